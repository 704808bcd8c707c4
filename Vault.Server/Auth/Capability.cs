namespace Vault.Server.Auth;

/// <summary>What a policy rule grants on the paths it matches.</summary>
[Flags]
public enum Capability
{
    None = 0,
    Read = 1,
    List = 2,
    Create = 4,
    Update = 8,
    Delete = 16,
    Rotate = 32,
    Checkout = 64,
    /// <summary>Every capability.</summary>
    Admin = Read | List | Create | Update | Delete | Rotate | Checkout,
    /// <summary>Refuses everything on the matched paths, whatever other rules grant.</summary>
    Deny = 1 << 10,
}

/// <summary>Parsing and naming of capabilities.</summary>
public static class Capabilities
{
    private static readonly Dictionary<string, Capability> ByName = new(StringComparer.Ordinal)
    {
        ["read"] = Capability.Read,
        ["list"] = Capability.List,
        ["create"] = Capability.Create,
        ["update"] = Capability.Update,
        ["delete"] = Capability.Delete,
        ["rotate"] = Capability.Rotate,
        ["checkout"] = Capability.Checkout,
        ["admin"] = Capability.Admin,
        ["deny"] = Capability.Deny,
    };

    public static IEnumerable<string> Names => ByName.Keys;

    public static bool TryParse(string name, out Capability capability) => ByName.TryGetValue(name, out capability);

    public static string Describe(Capability capability) =>
        string.Join(" or ", ByName.Where(p => p.Value != Capability.Admin && (capability & p.Value) != 0).Select(p => p.Key));
}
