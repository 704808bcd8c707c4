namespace Vault.Server.Auth;

/// <summary>
/// The compiled rules of a token's policies. Default deny; the union of every matching rule's
/// capabilities is granted, unless any matching rule says <c>deny</c>.
/// </summary>
public sealed class Acl
{
    private readonly IReadOnlyList<(PathGlob Glob, Capability Capabilities)> _rules;

    public Acl(IReadOnlyList<(PathGlob Glob, Capability Capabilities)> rules, bool isRoot)
    {
        _rules = rules;
        IsRoot = isRoot;
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
        foreach (var (glob, capabilities) in _rules)
        {
            if (!glob.Matches(path))
            {
                continue;
            }
            if ((capabilities & Capability.Deny) != 0)
            {
                return Capability.None;
            }
            granted |= capabilities;
        }
        return granted;
    }

    /// <summary>True when any of <paramref name="anyOf"/> is granted on <paramref name="path"/>.</summary>
    public bool Allows(string path, Capability anyOf) => (CapabilitiesFor(path) & anyOf) != 0;
}
