using System.CommandLine;
using System.Text.Json;
using Vault.Cli.Input;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl policy write|read|list|delete</c>.</summary>
internal static class PolicyCommands
{
    private static readonly JsonSerializerOptions FileOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static Command Build()
    {
        var command = new Command("policy", "Write, read, list and delete access policies");
        command.Subcommands.Add(Write());
        command.Subcommands.Add(Read());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Delete());
        return command;
    }

    private static Argument<string> NameArgument() => new("name") { Description = "Policy name" };

    private static Command Write()
    {
        var name = NameArgument();
        var file = new Argument<string>("file")
        {
            Description = """JSON policy file, '-' for standard input: {"rules":[{"path":"kv/apps/*","capabilities":["read","list"]}]}""",
        };
        var command = new Command("write", "Create or replace a policy from a JSON file") { name, file };
        command.SetHandler(async (ctx, ct) =>
        {
            var path = ctx.Value(file);
            var text = path == "-" ? await ctx.Console.In.ReadToEndAsync(ct) : ArgumentParsers.ReadFile(path, "the policy");
            var policy = Parse(text, path == "-" ? "standard input" : path);
            policy.Name = ctx.Value(name);
            await ctx.Client.PutPolicyAsync(policy, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(ToDocument(policy));
                return;
            }
            ctx.Out.Line($"Policy '{policy.Name}' written");
        });
        return command;
    }

    private static Command Read()
    {
        var name = NameArgument();
        var command = new Command("read", "Show a policy's rules (--json prints a file 'policy write' accepts)") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            var policy = await ctx.Client.GetPolicyAsync(ctx.Value(name), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(ToDocument(policy));
                return;
            }
            ctx.Out.Table(["PATH", "CAPABILITIES", "MFA"], policy.Rules.Select(r => new[] { r.Path, string.Join(", ", r.Capabilities), r.MfaWithinSeconds == 0 ? "-" : $"within {DurationParser.Format(TimeSpan.FromSeconds(r.MfaWithinSeconds))}" }).ToList());
        });
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List policy names");
        command.SetHandler(async (ctx, ct) =>
        {
            ctx.Out.Names("policies", await ctx.Client.ListPoliciesAsync(ct));
        });
        return command;
    }

    private static Command Delete()
    {
        var name = NameArgument();
        var command = new Command("delete", "Delete a policy") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DeletePolicyAsync(ctx.Value(name), ct);
            ctx.Out.Deleted("Policy", ctx.Value(name));
        });
        return command;
    }

    /// <exception cref="UsageException">Not valid JSON, or no rules.</exception>
    private static Policy Parse(string text, string source)
    {
        PolicyDocument? document;
        try
        {
            document = JsonSerializer.Deserialize<PolicyDocument>(text, FileOptions);
        }
        catch (JsonException ex)
        {
            throw new UsageException($"policy from {source} is not valid JSON: {ex.Message}");
        }
        if (document?.Rules is not { Count: > 0 } rules)
        {
            throw new UsageException($"policy from {source} has no \"rules\"");
        }
        var policy = new Policy();
        foreach (var rule in rules)
        {
            var proto = new PolicyRule { Path = rule.Path ?? "", MfaWithinSeconds = rule.MfaWithinSeconds ?? 0 };
            proto.Capabilities.AddRange(rule.Capabilities ?? []);
            policy.Rules.Add(proto);
        }
        return policy;
    }

    private static PolicyDocument ToDocument(Policy policy) =>
        new(policy.Name, policy.Rules.Select(r => new PolicyRuleDocument(r.Path, [.. r.Capabilities], r.MfaWithinSeconds == 0 ? null : r.MfaWithinSeconds)).ToList());

    /// <summary>The JSON shape of a policy file (and of <c>policy read --json</c>).</summary>
    private sealed record PolicyDocument(string? Name, List<PolicyRuleDocument>? Rules);

    /// <param name="MfaWithinSeconds">Step-up: what the rule grants needs an MFA code validated for the token this recently.</param>
    private sealed record PolicyRuleDocument(string? Path, List<string>? Capabilities, uint? MfaWithinSeconds = null);
}
