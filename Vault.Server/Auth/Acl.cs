namespace Vault.Server.Auth;

/// <summary>One compiled policy rule: a path glob, what it grants, and the step-up MFA window it asks for (null for none).</summary>
public readonly record struct AclRule(PathGlob Glob, Capability Capabilities, TimeSpan? MfaWithin = null);

/// <summary>
/// The compiled rules of a token's policies. Default deny; the union of every matching rule's
/// capabilities is granted, unless any matching rule says <c>deny</c>. A rule may also ask for a
/// fresh MFA (<see cref="MfaWindow"/>): then what it grants needs a code validated for the token
/// within its window — the shortest window of the matching rules that grant the capability.
/// </summary>
public sealed class Acl
{
    private readonly IReadOnlyList<AclRule> _rules;

    // Whether any rule asks for a step-up: the interceptor asks on every access of every request.
    private readonly bool _anyMfa;

    public Acl(IReadOnlyList<AclRule> rules, bool isRoot)
    {
        _rules = rules;
        IsRoot = isRoot;
        _anyMfa = rules.Any(r => r.MfaWithin is not null);
    }

    /// <summary>The root policy: everything, everywhere.</summary>
    public bool IsRoot { get; }

    public Capability CapabilitiesFor(string path)
    {
        if (IsRoot)
        {
            return Capability.Admin;
        }
        var granted = Capability.None;
        foreach (var rule in _rules)
        {
            if (!rule.Glob.Matches(path))
            {
                continue;
            }
            if ((rule.Capabilities & Capability.Deny) != 0)
            {
                return Capability.None;
            }
            granted |= rule.Capabilities;
        }
        return granted;
    }

    /// <summary>True when any of <paramref name="anyOf"/> is granted on <paramref name="path"/>.</summary>
    public bool Allows(string path, Capability anyOf) => (CapabilitiesFor(path) & anyOf) != 0;

    /// <summary>
    /// How recently an MFA code must have been validated for the token to use <paramref name="anyOf"/>
    /// on <paramref name="path"/>: the shortest window among the matching rules that grant any of
    /// it; null when none asks (a rule that asks cannot be escaped through a broader one that does not).
    /// </summary>
    public TimeSpan? MfaWindow(string path, Capability anyOf)
    {
        if (!_anyMfa)
        {
            return null;
        }
        TimeSpan? window = null;
        foreach (var rule in _rules)
        {
            if (rule.MfaWithin is { } within && (rule.Capabilities & anyOf) != 0 && rule.Glob.Matches(path) && (window is null || within < window))
            {
                window = within;
            }
        }
        return window;
    }
}
