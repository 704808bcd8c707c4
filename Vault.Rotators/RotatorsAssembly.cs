namespace Vault.Rotators;

/// <summary>Placeholder namespace anchor; rotators arrive with the rotation issue.</summary>
public static class RotatorsAssembly
{
    /// <summary>The plug-in contract version this assembly implements.</summary>
    public const int ContractVersion = 1;
}
