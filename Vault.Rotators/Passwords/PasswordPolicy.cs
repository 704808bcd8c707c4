namespace Vault.Rotators.Passwords;

/// <summary>What a generated password looks like: its length, the characters it may use and the classes it must contain.</summary>
/// <param name="Length">Number of characters, 8 to 256.</param>
/// <param name="Alphabet">The characters allowed: printable ASCII without space; duplicates are ignored.</param>
public sealed record PasswordPolicy(int Length, string Alphabet, bool RequireLower, bool RequireUpper, bool RequireDigit, bool RequireSymbol)
{
    /// <summary>
    /// Letters, digits, <c>-</c> and <c>_</c>: needs no quoting in a shell, a URL, a connection string
    /// (<c>;</c>, <c>=</c>, quotes) or a SQL literal, and survives every driver's escaping.
    /// </summary>
    public const string SafeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    public const int MinLength = 8;
    public const int MaxLength = 256;

    /// <summary>Below this many bits of entropy a policy is refused as too weak.</summary>
    public const double MinEntropyBits = 64;

    /// <summary>32 characters from <see cref="SafeAlphabet"/> with a lower-case letter, an upper-case letter and a digit: about 190 bits.</summary>
    public static PasswordPolicy Default { get; } = new(32, SafeAlphabet, RequireLower: true, RequireUpper: true, RequireDigit: true, RequireSymbol: false);

    /// <summary>The distinct allowed characters, in first-seen order.</summary>
    public string DistinctAlphabet => new([.. Alphabet.Distinct()]);

    /// <summary>Entropy of a uniformly chosen password of this policy, ignoring the (small) loss from required classes.</summary>
    public double EntropyBits => Length * Math.Log2(Math.Max(1, DistinctAlphabet.Length));

    /// <summary>Whether the policy can be satisfied and is strong enough.</summary>
    /// <returns>Null when valid, else (field, reason) with field one of <c>length</c>, <c>alphabet</c>, <c>require_lower</c>, <c>require_upper</c>, <c>require_digit</c>, <c>require_symbol</c>.</returns>
    public (string Field, string Reason)? Validate()
    {
        if (Length is < MinLength or > MaxLength)
        {
            return ("length", $"must be between {MinLength} and {MaxLength}");
        }
        if (string.IsNullOrEmpty(Alphabet))
        {
            return ("alphabet", "must not be empty");
        }
        foreach (var c in Alphabet)
        {
            if (c is < '!' or > '~')
            {
                return ("alphabet", "may only contain printable ASCII characters other than space");
            }
        }
        var alphabet = DistinctAlphabet;
        foreach (var (required, cls, field) in Classes())
        {
            if (required && !alphabet.Any(c => Classify(c) == cls))
            {
                return (field, $"requires a character the alphabet does not contain ({ClassName(cls)})");
            }
        }
        var requiredCount = Classes().Count(c => c.Required);
        if (Length < requiredCount)
        {
            return ("length", $"is shorter than the {requiredCount} required character classes");
        }
        if (EntropyBits < MinEntropyBits)
        {
            return ("length", $"gives {EntropyBits:F0} bits of entropy with a {alphabet.Length}-character alphabet; at least {MinEntropyBits:F0} are needed");
        }
        return null;
    }

    /// <summary>Whether <paramref name="password"/> contains every required class and only allowed characters.</summary>
    public bool IsSatisfiedBy(string password)
    {
        if (password.Length != Length || password.Any(c => !Alphabet.Contains(c, StringComparison.Ordinal)))
        {
            return false;
        }
        foreach (var (required, cls, _) in Classes())
        {
            if (required && !password.Any(c => Classify(c) == cls))
            {
                return false;
            }
        }
        return true;
    }

    internal static CharClass Classify(char c) => c switch
    {
        >= 'a' and <= 'z' => CharClass.Lower,
        >= 'A' and <= 'Z' => CharClass.Upper,
        >= '0' and <= '9' => CharClass.Digit,
        _ => CharClass.Symbol,
    };

    private IEnumerable<(bool Required, CharClass Class, string Field)> Classes()
    {
        yield return (RequireLower, CharClass.Lower, "require_lower");
        yield return (RequireUpper, CharClass.Upper, "require_upper");
        yield return (RequireDigit, CharClass.Digit, "require_digit");
        yield return (RequireSymbol, CharClass.Symbol, "require_symbol");
    }

    private static string ClassName(CharClass cls) => cls switch
    {
        CharClass.Lower => "a lower-case letter",
        CharClass.Upper => "an upper-case letter",
        CharClass.Digit => "a digit",
        _ => "a symbol",
    };

    internal enum CharClass { Lower, Upper, Digit, Symbol }
}
