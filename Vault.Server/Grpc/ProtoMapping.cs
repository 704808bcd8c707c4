using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Secrets;

namespace Vault.Server.Grpc;

/// <summary>Domain records to wire messages.</summary>
internal static class ProtoMapping
{
    public static Timestamp Time(long unixMs) => Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(unixMs));

    public static TokenInfo ToProto(this TokenRecord record)
    {
        var info = new TokenInfo
        {
            Accessor = record.Accessor,
            DisplayName = record.DisplayName,
            CreatedAt = Time(record.CreatedAtUnixMs),
            Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.TtlSeconds)),
            ParentAccessor = record.ParentAccessor,
            Entity = record.Entity,
        };
        info.Policies.AddRange(record.Policies);
        if (record.ExpiresAtUnixMs is { } expires)
        {
            info.ExpiresAt = Time(expires);
        }
        if (record.MaxExpiresAtUnixMs is { } max)
        {
            info.MaxExpiresAt = Time(max);
        }
        if (record.MfaAtUnixMs is { } mfa)
        {
            info.MfaValidatedAt = Time(mfa);
        }
        return info;
    }

    public static SecretMetadata ToProto(this SecretMetadataRecord meta, string path)
    {
        var proto = new SecretMetadata
        {
            Path = path,
            CurrentVersion = (ulong)meta.CurrentVersion,
            OldestVersion = (ulong)(meta.Versions.Count > 0 ? meta.Versions[0].Version : 0),
            MaxVersions = (uint)meta.MaxVersions,
            CasRequired = meta.CasRequired,
            CreatedAt = Time(meta.CreatedAtUnixMs),
            UpdatedAt = Time(meta.UpdatedAtUnixMs),
        };
        proto.CustomMetadata.Add(meta.CustomMetadata);
        foreach (var v in meta.Versions)
        {
            var info = new VersionInfo { Version = (ulong)v.Version, CreatedAt = Time(v.CreatedAtUnixMs), Destroyed = v.Destroyed };
            if (v.DeletedAtUnixMs is { } deleted)
            {
                info.DeletedAt = Time(deleted);
            }
            proto.Versions.Add(info);
        }
        return proto;
    }

    /// <exception cref="ValidationException">Seconds or nanos out of protobuf's range.</exception>
    public static TimeSpan? AsTimeSpan(this Duration? duration, string field)
    {
        if (duration is null)
        {
            return null;
        }
        try
        {
            return duration.ToTimeSpan();
        }
        catch (InvalidOperationException)
        {
            throw new ValidationException(field, "is not a valid duration");
        }
    }
}
