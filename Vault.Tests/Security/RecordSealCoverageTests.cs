using System.Collections;
using System.Reflection;
using Vault.Server.Crypto;

namespace Vault.Tests.Security;

/// <summary>
/// A record's seal covers what its <c>Canonical()</c> lists, and that list is written by hand. So
/// for every sealed record type in the server, every stored property must change the canonical
/// form when it changes (nested records' properties too), or carry <see cref="NotSealedAttribute"/>
/// saying why it need not. A new field fails here until someone decides.
/// </summary>
public sealed class RecordSealCoverageTests
{
    public static TheoryData<string> SealedRecords()
    {
        var data = new TheoryData<string>();
        foreach (var type in SealedTypes())
        {
            data.Add(type.FullName!);
        }
        return data;
    }

    private static IEnumerable<Type> SealedTypes() =>
        typeof(RecordSeal).Assembly.GetTypes()
            .Where(t => t.GetProperty("Seal") is not null && CanonicalOf(t) is not null)
            .OrderBy(t => t.FullName, StringComparer.Ordinal);

    private static MethodInfo? CanonicalOf(Type type) =>
        type.GetMethod("Canonical", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, Type.EmptyTypes);

    [Fact]
    public void TheScan_FindsTheSealedRecords()
    {
        // Tokens, policies, AppRoles, secret ids, targets, leases, dynamic roles, check-out sets, the audit anchor.
        Assert.True(SealedTypes().Count() >= 9, string.Join(", ", SealedTypes().Select(t => t.Name)));
    }

    [Theory]
    [MemberData(nameof(SealedRecords))]
    public void EveryStoredProperty_IsCoveredByTheSeal_OrSaysWhyNot(string typeName)
    {
        var type = typeof(RecordSeal).Assembly.GetType(typeName)!;
        var canonical = CanonicalOf(type)!;
        var record = Populated(type);
        var before = (string)canonical.Invoke(record, null)!;
        var uncovered = new List<string>();
        foreach (var (path, change) in Changes(type, record))
        {
            var restore = change();
            if ((string)canonical.Invoke(record, null)! == before)
            {
                uncovered.Add(path);
            }
            restore();
            Assert.Equal(before, (string)canonical.Invoke(record, null)!);
        }
        Assert.True(uncovered.Count == 0,
            $"{type.Name}: {string.Join(", ", uncovered)} change without changing what the seal covers; add them to Canonical() or mark them [NotSealed(\"why\")]");
    }

    [Fact]
    public void TargetRecord_TheTlsFieldsCannotBeDroppedIntoTheLineBeforeThem()
    {
        // The CA bundle, the pin and the verified-TLS mark are written only when set, after the
        // generation. Unescaped, the generation could take their lines in: a record with them
        // dropped (back to the old, unverified mode) would have the same canonical form, and seal.
        var original = new Vault.Server.Rotation.TargetRecord
        {
            Kind = "postgres", Host = "db", Generation = "0123456789abcdef0123456789abcdef",
            CaCertificates = "-----BEGIN CERTIFICATE-----", CertificatePin = "sha256:AAAA", VerifiedTlsByDefault = true,
        };
        var canonical = CanonicalOf(typeof(Vault.Server.Rotation.TargetRecord))!;
        var sealedText = (string)canonical.Invoke(original, null)!;
        var tail = sealedText[sealedText.IndexOf(original.Generation, StringComparison.Ordinal)..];
        var forged = new Vault.Server.Rotation.TargetRecord { Kind = "postgres", Host = "db", Generation = tail };

        Assert.NotEqual(sealedText, (string)canonical.Invoke(forged, null)!);
    }

    /// <summary>Every settable stored property but the seal, that is not marked not sealed.</summary>
    private static IEnumerable<PropertyInfo> Sealed(Type type) =>
        type.GetProperties(BindingFlags.Instance | BindingFlags.Public)
            .Where(p => p.CanRead && p.CanWrite && p.Name != "Seal" && p.GetCustomAttribute<NotSealedAttribute>() is null);

    private static object Populated(Type type)
    {
        var record = Activator.CreateInstance(type)!;
        foreach (var property in Sealed(type))
        {
            property.SetValue(record, Value(property.PropertyType, first: true));
        }
        return record;
    }

    /// <summary>For each covered property (and each property of a nested record in a list), a change and how to undo it.</summary>
    private static IEnumerable<(string Path, Func<Action> Change)> Changes(Type type, object record)
    {
        foreach (var property in Sealed(type))
        {
            var original = property.GetValue(record);
            yield return (property.Name, () =>
            {
                property.SetValue(record, Value(property.PropertyType, first: false));
                return () => property.SetValue(record, original);
            });
            if (ElementOf(property.PropertyType) is { } element && IsRecord(element) && original is IList { Count: 1 } list)
            {
                foreach (var (path, change) in Changes(element, list[0]!))
                {
                    yield return ($"{property.Name}[0].{path}", change);
                }
            }
        }
    }

    private static Type? ElementOf(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) ? type.GetGenericArguments()[0] : null;

    private static bool IsRecord(Type type) => type.IsClass && type != typeof(string);

    /// <summary>Two different values of <paramref name="type"/>.</summary>
    private static object? Value(Type type, bool first)
    {
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return Value(underlying, first);
        }
        if (type == typeof(string))
        {
            return first ? "first" : "second";
        }
        if (type == typeof(bool))
        {
            return !first;
        }
        if (type == typeof(int) || type == typeof(uint) || type == typeof(long) || type == typeof(ulong))
        {
            return Convert.ChangeType(first ? 1 : 2, type, System.Globalization.CultureInfo.InvariantCulture);
        }
        if (type.IsEnum)
        {
            return System.Enum.GetValues(type).GetValue(first ? 0 : 1);
        }
        if (type == typeof(Dictionary<string, string>))
        {
            return new Dictionary<string, string> { ["key"] = first ? "first" : "second" };
        }
        if (ElementOf(type) is { } element)
        {
            var list = (IList)Activator.CreateInstance(type)!;
            list.Add(IsRecord(element) ? Populated(element) : Value(element, first));
            if (!first && IsRecord(element))
            {
                list.Add(Populated(element));
            }
            return list;
        }
        throw new InvalidOperationException($"no test values for a sealed property of type {type}: add them here");
    }
}
