using System.CommandLine;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl kv ...</c>: versioned key/value secrets.</summary>
internal static class KvCommands
{
    public static Command Build()
    {
        var command = new Command("kv", "Read and write versioned key/value secrets");
        command.Subcommands.Add(Put());
        command.Subcommands.Add(Get());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Delete());
        command.Subcommands.Add(VersionsCommand("undelete", "Restore soft-deleted versions", (ctx, path, versions, ct) => ctx.Client.UndeleteSecretVersionsAsync(path, versions, ct), "Restored"));
        command.Subcommands.Add(VersionsCommand("destroy", "Destroy versions for good (their data keys are erased)", (ctx, path, versions, ct) => ctx.Client.DestroySecretVersionsAsync(path, versions, ct), "Destroyed"));
        command.Subcommands.Add(History());
        command.Subcommands.Add(Metadata());
        return command;
    }

    private static Argument<string> PathArgument() => new("path") { Description = "Secret path, e.g. apps/billing/db" };

    private static Command Put()
    {
        var path = PathArgument();
        var data = new Argument<string[]>("data")
        {
            Description = "KEY=VALUE pairs; KEY=@FILE reads the value from FILE (keeps secrets off the command line)",
            Arity = ArgumentArity.OneOrMore,
        };
        var cas = new Option<ulong?>("--cas") { Description = "Check-and-set: write only if the current version is N (0: only if the path is new)" };
        var command = new Command("put", "Write a new version of a secret") { path, data, cas };
        command.SetHandler(async (ctx, ct) =>
        {
            var values = ArgumentParsers.KeyValuePairs(ctx.Value(data));
            var written = await ctx.Client.PutSecretAsync(ctx.Value(path), values, ctx.Value(cas), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Path = ctx.Value(path), written.Version, CreatedAt = Printer.Time(written.CreatedAt) });
                return;
            }
            ctx.Out.Fields(("Path", ctx.Value(path)), ("Version", written.Version.ToString()), ("Created", Printer.Human(written.CreatedAt)));
        });
        return command;
    }

    private static Command Get()
    {
        var path = PathArgument();
        var version = new Option<ulong>("--version") { Description = "Read this version (default: the latest)" };
        var field = new Option<string>("--field") { Description = "Print only this key's value" };
        var command = new Command("get", "Read a secret (prints its values)") { path, version, field };
        command.SetHandler(async (ctx, ct) =>
        {
            var secret = await ctx.Client.GetSecretAsync(ctx.Value(path), ctx.Value(version), ct);
            if (ctx.Value(field) is { } key)
            {
                if (!secret.Data.TryGetValue(key, out var value))
                {
                    throw new UsageException($"secret '{secret.Path}' version {secret.Version} has no key '{key}'");
                }
                ctx.Out.Field(value);
                return;
            }
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new
                {
                    secret.Path,
                    secret.Version,
                    CreatedAt = Printer.Time(secret.CreatedAt),
                    Data = Printer.Sorted(secret.Data),
                    CustomMetadata = Printer.Sorted(secret.CustomMetadata),
                });
                return;
            }
            ctx.Out.Fields(("Path", secret.Path), ("Version", secret.Version.ToString()), ("Created", Printer.Human(secret.CreatedAt)));
            ctx.Out.Line("");
            ctx.Out.Table(["KEY", "VALUE"], Printer.Sorted(secret.Data).Select(kv => new[] { kv.Key, kv.Value }).ToList());
        });
        return command;
    }

    private static Command List()
    {
        var prefix = new Argument<string>("prefix") { Description = "Folder to list (default: the top level)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "" };
        var command = new Command("list", "List the keys under a folder; folders end in '/'") { prefix };
        command.SetHandler(async (ctx, ct) =>
        {
            var keys = await ctx.Client.ListSecretsAsync(ctx.Value(prefix), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Keys = keys });
                return;
            }
            foreach (var key in keys)
            {
                ctx.Out.Line(key);
            }
        });
        return command;
    }

    private static Command Delete()
    {
        var path = PathArgument();
        var versions = new Option<string>("--versions") { Description = "Comma-separated versions to soft-delete (default: the latest)" };
        var command = new Command("delete", "Soft-delete versions of a secret (undelete restores them)") { path, versions };
        command.SetHandler(async (ctx, ct) =>
        {
            var list = ArgumentParsers.Versions(ctx.Value(versions), "--versions");
            var deleted = await ctx.Client.DeleteSecretVersionsAsync(ctx.Value(path), list, ct);
            PrintVersions(ctx, "Deleted", ctx.Value(path), deleted);
        });
        return command;
    }

    private static Command VersionsCommand(string name, string description, Func<CommandContext, string, List<ulong>, CancellationToken, Task<IReadOnlyList<ulong>>> call, string verb)
    {
        var path = PathArgument();
        var versions = new Option<string>("--versions") { Description = "Comma-separated versions, e.g. 1,2", Required = true };
        var command = new Command(name, description) { path, versions };
        command.SetHandler(async (ctx, ct) =>
        {
            var list = ArgumentParsers.Versions(ctx.Value(versions), "--versions");
            if (list.Count == 0)
            {
                throw new UsageException("--versions: name at least one version");
            }
            PrintVersions(ctx, verb, ctx.Value(path), await call(ctx, ctx.Value(path), list, ct));
        });
        return command;
    }

    private static Command History()
    {
        var path = PathArgument();
        var command = new Command("history", "Show a secret's version history") { path };
        command.SetHandler(async (ctx, ct) =>
        {
            var meta = await ctx.Client.GetSecretMetadataAsync(ctx.Value(path), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(MetadataJson(meta));
                return;
            }
            var rows = meta.Versions.Select(v => new[]
            {
                v.Version.ToString(),
                Printer.Human(v.CreatedAt),
                Printer.Human(v.DeletedAt),
                v.Destroyed ? "yes" : "no",
                v.Version == meta.CurrentVersion ? "*" : "",
            }).ToList();
            ctx.Out.Table(["VERSION", "CREATED", "DELETED", "DESTROYED", "CURRENT"], rows);
        });
        return command;
    }

    private static Command Metadata()
    {
        var command = new Command("metadata", "Show, change or delete a secret's metadata (max versions, check-and-set, custom metadata)");
        var getPath = PathArgument();
        var get = new Command("get", "Show a secret's metadata (kv history shows its versions)") { getPath };
        get.SetHandler(async (ctx, ct) => PrintMetadata(ctx, await ctx.Client.GetSecretMetadataAsync(ctx.Value(getPath), ct)));
        command.Subcommands.Add(get);

        var putPath = PathArgument();
        var maxVersions = new Option<uint?>("--max-versions") { Description = "Keep at most N versions" };
        var casRequired = new Option<bool?>("--cas-required") { Description = "Require --cas on every write (true/false)" };
        var custom = new Option<string[]>("--custom") { Description = "Replace the custom metadata with these KEY=VALUE pairs (repeatable)" };
        var put = new Command("put", "Change a secret's metadata; options not given are left alone") { putPath, maxVersions, casRequired, custom };
        put.SetHandler(async (ctx, ct) =>
        {
            var request = new UpdateMetadataRequest { Path = ctx.Value(putPath) };
            if (ctx.Value(maxVersions) is { } max)
            {
                request.MaxVersions = max;
            }
            if (ctx.Value(casRequired) is { } cas)
            {
                request.CasRequired = cas;
            }
            if (ctx.Value(custom) is { Length: > 0 } pairs)
            {
                request.CustomMetadata.Add(ArgumentParsers.KeyValuePairs(pairs, "--custom"));
                request.ReplaceCustomMetadata = true;
            }
            if (!request.HasMaxVersions && !request.HasCasRequired && !request.ReplaceCustomMetadata)
            {
                throw new UsageException("nothing to change: give --max-versions, --cas-required or --custom");
            }
            PrintMetadata(ctx, await ctx.Client.UpdateSecretMetadataAsync(request, ct));
        });
        command.Subcommands.Add(put);

        var deletePath = PathArgument();
        var delete = new Command("delete", "Destroy every version and the metadata of a secret, for good") { deletePath };
        delete.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DeleteSecretMetadataAsync(ctx.Value(deletePath), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Path = ctx.Value(deletePath), Deleted = true });
                return;
            }
            ctx.Out.Line($"Deleted {ctx.Value(deletePath)} and all its versions");
        });
        command.Subcommands.Add(delete);
        return command;
    }

    private static void PrintMetadata(CommandContext ctx, SecretMetadata meta)
    {
        if (ctx.Out.IsJson)
        {
            ctx.Out.Json(MetadataJson(meta));
            return;
        }
        var custom = string.Join(", ", Printer.Sorted(meta.CustomMetadata).Select(kv => $"{kv.Key}={kv.Value}"));
        ctx.Out.Fields(
            ("Path", meta.Path),
            ("Current Version", meta.CurrentVersion.ToString()),
            ("Oldest Version", meta.OldestVersion.ToString()),
            ("Max Versions", meta.MaxVersions.ToString()),
            ("CAS Required", meta.CasRequired ? "true" : "false"),
            ("Created", Printer.Human(meta.CreatedAt)),
            ("Updated", Printer.Human(meta.UpdatedAt)),
            ("Custom Metadata", custom.Length == 0 ? "-" : custom));
    }

    private static object MetadataJson(SecretMetadata meta) => new
    {
        meta.Path,
        meta.CurrentVersion,
        meta.OldestVersion,
        meta.MaxVersions,
        meta.CasRequired,
        CreatedAt = Printer.Time(meta.CreatedAt),
        UpdatedAt = Printer.Time(meta.UpdatedAt),
        CustomMetadata = Printer.Sorted(meta.CustomMetadata),
        Versions = meta.Versions.Select(v => new { v.Version, CreatedAt = Printer.Time(v.CreatedAt), DeletedAt = Printer.Time(v.DeletedAt), v.Destroyed }).ToList(),
    };

    private static void PrintVersions(CommandContext ctx, string verb, string path, IReadOnlyList<ulong> versions)
    {
        if (ctx.Out.IsJson)
        {
            ctx.Out.Json(new { Path = path, Versions = versions });
            return;
        }
        ctx.Out.Line($"{verb} version{(versions.Count == 1 ? "" : "s")} {string.Join(", ", versions)} of {path}");
    }
}
