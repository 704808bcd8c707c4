namespace Vault.Client;

/// <summary>Placeholder until the client lands.</summary>
public static class Placeholder
{
}
