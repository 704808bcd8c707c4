using System.Globalization;
using Vault.Cli.Input;
using Vault.Protocol.V1;

namespace Vault.Cli.Output;

/// <summary>
/// How dynamic roles, check-out sets and leases look: field lines and table rows for people, and the JSON shapes
/// documented in docs/CLI.md (keep them stable). The only password printed is the one
/// <c>lease checkout</c> hands out, which the caller passes in.
/// </summary>
internal static class LeasePrinter
{
    public static readonly string[] ListHeaders = ["ID", "ROLE", "USERNAME", "STATE", "EXPIRES", "TOKEN"];

    /// <summary>A dynamic role: field lines, or its JSON document.</summary>
    public static void Print(Printer output, DynamicRole role)
    {
        if (output.IsJson)
        {
            output.Json(new
            {
                role.Name,
                role.Target,
                CreationStatements = role.CreationStatements.ToList(),
                DefaultTtlSeconds = (long?)role.DefaultTtl?.ToTimeSpan().TotalSeconds,
                MaxTtlSeconds = (long?)role.MaxTtl?.ToTimeSpan().TotalSeconds,
            });
            return;
        }
        var fields = new List<(string, string)>
        {
            ("Name", role.Name),
            ("Target", role.Target),
            ("Default TTL", role.DefaultTtl is null ? "default (1h)" : DurationParser.Format(role.DefaultTtl.ToTimeSpan())),
            ("Max TTL", role.MaxTtl is null ? "default (24h)" : DurationParser.Format(role.MaxTtl.ToTimeSpan())),
        };
        if (role.CreationStatements.Count == 0)
        {
            fields.Add(("Statements", "-"));
        }
        for (var i = 0; i < role.CreationStatements.Count; i++)
        {
            // A statement may span lines; one line each keeps the fields aligned and greppable.
            fields.Add(($"Statement {i + 1}", OneLine(role.CreationStatements[i])));
        }
        output.Fields([.. fields]);
    }

    /// <summary>A check-out set: field lines (each target, lent or free), or its JSON document.</summary>
    public static void Print(Printer output, CheckoutSet set)
    {
        if (output.IsJson)
        {
            output.Json(new
            {
                set.Name,
                Targets = set.Targets.ToList(),
                DefaultTtlSeconds = (long?)set.DefaultTtl?.ToTimeSpan().TotalSeconds,
                MaxTtlSeconds = (long?)set.MaxTtl?.ToTimeSpan().TotalSeconds,
                Lent = set.Lent.ToList(),
            });
            return;
        }
        var lent = set.Lent.ToHashSet(StringComparer.Ordinal);
        var fields = new List<(string, string)>
        {
            ("Name", set.Name),
            ("Default TTL", set.DefaultTtl is null ? "default (1h)" : DurationParser.Format(set.DefaultTtl.ToTimeSpan())),
            ("Max TTL", set.MaxTtl is null ? "default (24h)" : DurationParser.Format(set.MaxTtl.ToTimeSpan())),
            ("Lent", $"{set.Targets.Count(lent.Contains)} of {set.Targets.Count}"),
        };
        for (var i = 0; i < set.Targets.Count; i++)
        {
            fields.Add(($"Target {i + 1}", $"{set.Targets[i]} ({(lent.Contains(set.Targets[i]) ? "lent" : "free")})"));
        }
        output.Fields([.. fields]);
    }

    /// <summary>A lease: field lines, or its JSON document.</summary>
    public static void Print(Printer output, Lease lease)
    {
        if (output.IsJson)
        {
            output.Json(Json(lease));
            return;
        }
        output.Fields([.. Fields(lease)]);
    }

    /// <summary>What <c>lease checkout</c> prints: the lease with the user name and password it was issued with.</summary>
    public static void Print(Printer output, IssuedCredential credential)
    {
        var lease = credential.Lease ?? new Lease();
        if (output.IsJson)
        {
            output.Json(new { Lease = Json(lease), credential.Username, credential.Password });
            return;
        }
        if (IsCheckout(lease))
        {
            // A borrowed account is a rotation target: name it, the set it goes back to, and that check-in kills the password.
            output.Fields(
                ("Lease ID", lease.Id),
                ("Set", lease.Role),
                ("Target", lease.Target),
                ("Username", credential.Username),
                ("Password", credential.Password),
                ("Expires", Printer.Human(lease.ExpiresAt)),
                ("Max Expires", Printer.Human(lease.MaxExpiresAt)),
                ("Check In", $"vaultctl lease revoke {lease.Id} (rotates the password)"));
            return;
        }
        output.Fields(
            ("Lease ID", lease.Id),
            ("Role", lease.Role),
            ("Username", credential.Username),
            ("Password", credential.Password),
            ("Expires", Printer.Human(lease.ExpiresAt)),
            ("Max Expires", Printer.Human(lease.MaxExpiresAt)));
    }

    /// <summary>Whether the lease lends an account of a check-out set (id <c>checkout/&lt;set&gt;/...</c>) rather than a dynamic user.</summary>
    public static bool IsCheckout(Lease lease) => lease.Id.StartsWith("checkout/", StringComparison.Ordinal);

    /// <summary>The JSON document of a lease (<c>lease lookup --json</c>, an element of <c>lease list --json</c>).</summary>
    public static object Json(Lease lease) => new
    {
        lease.Id,
        lease.Role,
        lease.Target,
        lease.Username,
        State = TargetPrinter.Name(lease.State),
        IssuedAt = Printer.Time(lease.IssuedAt),
        ExpiresAt = Printer.Time(lease.ExpiresAt),
        MaxExpiresAt = Printer.Time(lease.MaxExpiresAt),
        TokenAccessor = NullIfEmpty(lease.TokenAccessor),
        lease.RevokeAttempts,
        LastError = NullIfEmpty(lease.LastError),
    };

    /// <summary>A <c>lease list</c> row; see <see cref="ListHeaders"/>.</summary>
    public static string[] ListRow(Lease lease) =>
    [
        lease.Id,
        lease.Role,
        lease.Username,
        TargetPrinter.Name(lease.State),
        Printer.Human(lease.ExpiresAt),
        DashIfEmpty(lease.TokenAccessor),
    ];

    private static List<(string, string)> Fields(Lease lease)
    {
        var fields = new List<(string, string)>
        {
            ("Lease ID", lease.Id),
            ("Role", lease.Role),
            ("Target", lease.Target),
            ("Username", lease.Username),
            ("State", TargetPrinter.Name(lease.State)),
            ("Issued", Printer.Human(lease.IssuedAt)),
            ("Expires", Printer.Human(lease.ExpiresAt)),
            ("Max Expires", Printer.Human(lease.MaxExpiresAt)),
            ("Token Accessor", DashIfEmpty(lease.TokenAccessor)),
        };
        if (lease.RevokeAttempts > 0 || lease.LastError.Length > 0)
        {
            fields.Add(("Revoke Attempts", lease.RevokeAttempts.ToString(CultureInfo.InvariantCulture)));
            fields.Add(("Last Error", DashIfEmpty(lease.LastError)));
        }
        return fields;
    }

    private static string OneLine(string text) =>
        string.Join(' ', text.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    private static string DashIfEmpty(string value) => value.Length == 0 ? "-" : value;
}
