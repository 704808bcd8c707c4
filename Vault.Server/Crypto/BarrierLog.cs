using Microsoft.Extensions.Logging;

namespace Vault.Server.Crypto;

internal static partial class BarrierLog
{
    [LoggerMessage(2001, LogLevel.Information, "Vault initialized (Argon2id m={MemoryKib} KiB, t={Iterations}, p={Parallelism})")]
    public static partial void Initialized(ILogger logger, int memoryKib, int iterations, int parallelism);

    [LoggerMessage(2009, LogLevel.Information, "Vault initialized with key shares: {Shares} shares, any {Threshold} of which unseal")]
    public static partial void InitializedWithShares(ILogger logger, int shares, int threshold);

    [LoggerMessage(2010, LogLevel.Information, "Key shares given towards an unseal were forgotten: none came for {Timeout}")]
    public static partial void UnsealProgressExpired(ILogger logger, TimeSpan timeout);

    [LoggerMessage(2011, LogLevel.Warning, "Rekey: the passphrase was changed; the old one no longer unseals")]
    public static partial void PassphraseChanged(ILogger logger);

    [LoggerMessage(2012, LogLevel.Information, "Rekey: new key shares made ({Shares}, any {Threshold} unseal) and staged; the current shares unseal until a quorum of the new ones is given back")]
    public static partial void RekeyStaged(ILogger logger, int shares, int threshold);

    [LoggerMessage(2013, LogLevel.Warning, "Rekey: the new key shares ({Shares}, any {Threshold} unseal) took effect; the old shares no longer unseal")]
    public static partial void Rekeyed(ILogger logger, int shares, int threshold);

    [LoggerMessage(2002, LogLevel.Information, "Vault unsealed at key version {KeyVersion}")]
    public static partial void Unsealed(ILogger logger, int keyVersion);

    [LoggerMessage(2003, LogLevel.Warning, "Unseal refused: the passphrase or shares did not unwrap the keyring")]
    public static partial void UnsealRefused(ILogger logger);

    [LoggerMessage(2004, LogLevel.Information, "Vault sealed; keys zeroed")]
    public static partial void Sealed(ILogger logger);

    [LoggerMessage(2005, LogLevel.Information, "Key-encryption key rotated to version {KeyVersion}")]
    public static partial void KeyRotated(ILogger logger, int keyVersion);

    [LoggerMessage(2006, LogLevel.Information, "Rewrapped {Count} records to key version {KeyVersion}")]
    public static partial void Rewrapped(ILogger logger, int count, int keyVersion);

    [LoggerMessage(2008, LogLevel.Error, "Rewrap skipped {Count} records whose wrapped key failed authentication; they stay under their old key")]
    public static partial void RewrapSkipped(ILogger logger, int count);

    [LoggerMessage(2007, LogLevel.Error, "Background rewrap failed; will retry")]
    public static partial void RewrapFailed(ILogger logger, Exception exception);

    [LoggerMessage(2014, LogLevel.Information, "Following the active node: the keyring's current key version is now {KeyVersion}")]
    public static partial void KeyringFollowed(ILogger logger, int keyVersion);

    [LoggerMessage(2015, LogLevel.Warning, "The keyring was wrapped again under another unseal key (passphrase or shares changed on another node); this node sealed itself: unseal it with the new ones")]
    public static partial void SealedByNewKeyring(ILogger logger);
}
