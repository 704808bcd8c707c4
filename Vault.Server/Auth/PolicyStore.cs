using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Auth;

/// <summary>
/// Named policies, validated on write. A policy is verified and compiled once per stored version
/// (<see cref="IVaultStore.GetDerived{T, TDerived}"/>): the compiled rules live exactly as long
/// as the version they came from, so an update or delete takes effect on the next request.
/// </summary>
public sealed class PolicyStore(IVaultStore store, SecurityBarrier barrier, TimeProvider clock)
{
    public const string RootPolicy = "root";
    public const uint MaxMfaWindowSeconds = 86_400;

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

    /// <summary>Checks a list of policy names a role, user, entity or group grants: at most 64, each valid and existing.</summary>
    /// <returns>The names, each once, in order.</returns>
    /// <exception cref="ValidationException">Too many, or a bad or unknown name (naming <paramref name="field"/>[i]).</exception>
    public List<string> ValidateExisting(IReadOnlyList<string> names, string field)
    {
        if (names.Count > 64)
        {
            throw new ValidationException(field, "must name at most 64 policies");
        }
        for (var i = 0; i < names.Count; i++)
        {
            ValidateName(names[i], $"{field}[{i}]");
            if (!Exists(names[i]))
            {
                throw new ValidationException($"{field}[{i}]", $"no policy named '{names[i]}'");
            }
        }
        return names.Distinct(StringComparer.Ordinal).ToList();
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
            Rules = rules.Select(r => new PolicyRuleRecord { Path = r.Path, Capabilities = r.Capabilities.Distinct().ToList(), MfaWithinSeconds = r.MfaWithinSeconds }).ToList(),
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
    public Acl AclFor(IReadOnlyList<string> policyNames)
    {
        if (policyNames.Contains(RootPolicy))
        {
            return new Acl([], isRoot: true);
        }
        if (policyNames.Count == 1)
        {
            return new Acl(Compiled(policyNames[0]) ?? [], isRoot: false);
        }
        var rules = new List<AclRule>();
        foreach (var name in policyNames)
        {
            rules.AddRange(Compiled(name) ?? []);
        }
        return new Acl(rules, isRoot: false);
    }

    private List<AclRule>? Compiled(string name) =>
        store.GetDerived<PolicyRecord, List<AclRule>>(Collections.Policies, name, record =>
        {
            RecordSeal.Verify(Hmac, Collections.Policies, name, record.Canonical(), record.Seal);
            return Compile(record.Rules);
        });

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

    private static List<AclRule> Compile(IReadOnlyList<PolicyRuleRecord> rules)
    {
        var compiled = new List<AclRule>(rules.Count);
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
            if (rule.MfaWithinSeconds > MaxMfaWindowSeconds)
            {
                throw new ValidationException($"policy.rules[{i}].mfa_within_seconds", $"must be at most {MaxMfaWindowSeconds} (a day)");
            }
            compiled.Add(new AclRule(glob, capabilities, rule.MfaWithinSeconds > 0 ? TimeSpan.FromSeconds(rule.MfaWithinSeconds) : null));
        }
        return compiled;
    }
}
