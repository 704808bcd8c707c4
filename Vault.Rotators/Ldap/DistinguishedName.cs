namespace Vault.Rotators.Ldap;

/// <summary>Just enough RFC 4514 to tell a DN from a user name and whether one DN lies under another.</summary>
internal static class DistinguishedName
{
    /// <summary>The RDNs of <paramref name="dn"/> in written order (leaf first), normalised for comparison; null when it is not a DN.</summary>
    /// <remarks>
    /// Normalising lower-cases attribute types and values and trims spaces around separators; that
    /// matches how directories compare the usual naming attributes (cn, uid, ou, dc), which are
    /// case-insensitive.
    /// </remarks>
    public static IReadOnlyList<string>? Parse(string dn)
    {
        if (string.IsNullOrWhiteSpace(dn) || dn.Any(char.IsControl))
        {
            return null;
        }
        var rdns = new List<string>();
        foreach (var rdn in Split(dn, ',', ';'))
        {
            var avas = new List<string>();
            foreach (var ava in Split(rdn, '+'))
            {
                var equals = IndexOfUnescaped(ava, '=');
                if (equals < 0)
                {
                    return null;
                }
                var type = ava[..equals].Trim();
                var value = ava[(equals + 1)..].Trim();
                if (!IsAttributeType(type) || value.Length == 0)
                {
                    return null;
                }
                avas.Add(type.ToLowerInvariant() + "=" + value.ToLowerInvariant());
            }
            // Multi-valued RDNs are unordered.
            avas.Sort(StringComparer.Ordinal);
            rdns.Add(string.Join("+", avas));
        }
        return rdns;
    }

    /// <summary>Whether <paramref name="dn"/> is <paramref name="baseDn"/> or lies below it.</summary>
    public static bool IsUnder(IReadOnlyList<string> dn, IReadOnlyList<string> baseDn) =>
        dn.Count >= baseDn.Count && dn.Skip(dn.Count - baseDn.Count).SequenceEqual(baseDn, StringComparer.Ordinal);

    private static bool IsAttributeType(string type) =>
        type.Length > 0 && (char.IsAsciiLetter(type[0])
            ? type.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')
            : type.All(c => char.IsAsciiDigit(c) || c == '.') && !type.StartsWith('.') && !type.EndsWith('.'));

    /// <summary>Splits on separators that are neither backslash-escaped nor inside a quoted value.</summary>
    private static List<string> Split(string text, params char[] separators)
    {
        var parts = new List<string>();
        var start = 0;
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\')
            {
                i++;
            }
            else if (c == '"')
            {
                quoted = !quoted;
            }
            else if (!quoted && separators.Contains(c))
            {
                parts.Add(text[start..i]);
                start = i + 1;
            }
        }
        parts.Add(text[start..]);
        return parts;
    }

    private static int IndexOfUnescaped(string text, char target)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\')
            {
                i++;
            }
            else if (text[i] == target)
            {
                return i;
            }
        }
        return -1;
    }
}
