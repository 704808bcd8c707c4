using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Auth;

/// <summary>
/// Named policies, validated on write. Compiled from the stored record on every use: a cache
/// filled from a read that raced a delete or an update could keep a revoked grant alive.
/// </summary>
public sealed class PolicyStore(IVaultStore store, SecurityBarrier barrier, TimeProvider clock)
{
    public const string RootPolicy = "root";

    public static string ValidateName(string? name, string field = "name")
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new ValidationException(field, "must not be empty");
        }
        if (name.Length > 128 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ValidationException(field, "must be 1 to 128 characters of letters, digits, '-', '_' or '.'");
        }
        return name;
    }

    public bool Exists(string name) => name == RootPolicy || store.Get<PolicyRecord>(Collections.Policies, name) is not null;

    public async Task PutAsync(string name, IReadOnlyList<PolicyRuleRecord> rules, CancellationToken cancellationToken)
    {
        ValidateName(name, "policy.name");
        if (name == RootPolicy)
        {
            throw new ValidationException("policy.name", "'root' is built in and cannot be changed");
        }
        if (rules.Count == 0)
        {
            throw new ValidationException("policy.rules", "must contain at least one rule");
        }
        if (rules.Count > 256)
        {
            throw new ValidationException("policy.rules", "must contain at most 256 rules");
        }
        Compile(rules);
        var record = new PolicyRecord
        {
            Rules = rules.Select(r => new PolicyRuleRecord { Path = r.Path, Capabilities = r.Capabilities.Distinct().ToList() }).ToList(),
            UpdatedAtUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        record.Seal = RecordSeal.Compute(Hmac, Collections.Policies, name, record.Canonical());
        await store.WriteAsync(tx =>
        {
            tx.Put(Collections.Policies, name, record);
            return true;
        }, cancellationToken);
    }

    public PolicyRecord Get(string name)
    {
        ValidateName(name);
        if (name == RootPolicy)
        {
            return new PolicyRecord { Rules = [new PolicyRuleRecord { Path = "*", Capabilities = ["admin"] }] };
        }
        return Load(name) ?? throw new NotFoundException($"no policy named '{name}'");
    }

    public IReadOnlyList<string> List() =>
        [RootPolicy, .. store.List<PolicyRecord>(Collections.Policies, "").Select(p => p.Key)];

    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
    {
        ValidateName(name);
        if (name == RootPolicy)
        {
            throw new ValidationException("name", "'root' is built in and cannot be deleted");
        }
        await store.WriteAsync(tx =>
        {
            if (tx.Get<PolicyRecord>(Collections.Policies, name) is null)
            {
                throw new NotFoundException($"no policy named '{name}'");
            }
            tx.Delete(Collections.Policies, name);
            return true;
        }, cancellationToken);
    }

    /// <summary>The ACL for a set of policy names. Unknown (deleted) policies grant nothing.</summary>
    public Acl AclFor(IEnumerable<string> policyNames)
    {
        var rules = new List<(PathGlob, Capability)>();
        var isRoot = false;
        foreach (var name in policyNames)
        {
            if (name == RootPolicy)
            {
                isRoot = true;
                continue;
            }
            var record = Load(name);
            if (record is not null)
            {
                rules.AddRange(Compile(record.Rules));
            }
        }
        return new Acl(rules, isRoot);
    }

    private PolicyRecord? Load(string name)
    {
        var record = store.Get<PolicyRecord>(Collections.Policies, name);
        if (record is not null)
        {
            RecordSeal.Verify(Hmac, Collections.Policies, name, record.Canonical(), record.Seal);
        }
        return record;
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);

    private static List<(PathGlob, Capability)> Compile(IReadOnlyList<PolicyRuleRecord> rules)
    {
        var compiled = new List<(PathGlob, Capability)>(rules.Count);
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            var glob = PathGlob.Parse(rule.Path, $"policy.rules[{i}].path");
            if (rule.Capabilities.Count == 0)
            {
                throw new ValidationException($"policy.rules[{i}].capabilities", "must name at least one capability");
            }
            var capabilities = Capability.None;
            foreach (var name in rule.Capabilities)
            {
                if (!Capabilities.TryParse(name, out var capability))
                {
                    throw new ValidationException($"policy.rules[{i}].capabilities", $"unknown capability '{name}' (known: {string.Join(", ", Capabilities.Names)})");
                }
                capabilities |= capability;
            }
            compiled.Add((glob, capabilities));
        }
        return compiled;
    }
}
