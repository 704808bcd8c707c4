using System.Globalization;
using System.Text;
using Vault.Cli.Input;
using Vault.Protocol.V1;

namespace Vault.Cli.Output;

/// <summary>
/// How rotation targets and their events look: field lines and table rows for people, and the
/// JSON shapes documented in docs/CLI.md (keep them stable). Never a password: the only command
/// that prints one is <c>target credential</c>, which does not come through here.
/// </summary>
internal static class TargetPrinter
{
    /// <summary>The server's default alphabet (Vault.Rotators' <c>PasswordPolicy.SafeAlphabet</c>), named rather than spelled out.</summary>
    private const string DefaultAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    public static readonly string[] ListHeaders = ["NAME", "KIND", "ACCOUNT", "STATE", "VERSION", "LAST-ROTATED", "NEXT-ROTATION", "NOTES"];

    public static readonly string[] HistoryHeaders = ["TIME", "TRIGGER", "OUTCOME", "ACCOUNT", "VERSION", "STEP", "REASON"];

    /// <summary>A target's configuration and status: field lines, or its JSON document.</summary>
    public static void Print(Printer output, Target target)
    {
        if (output.IsJson)
        {
            output.Json(Json(target));
            return;
        }
        output.Fields([.. Fields(target)]);
    }

    /// <summary>The JSON document of a target (<c>target show --json</c>, an element of <c>target list --json</c>).</summary>
    public static object Json(Target target)
    {
        var connection = target.Connection ?? new TargetConnection();
        var policy = target.PasswordPolicy;
        var schedule = target.Schedule;
        var status = target.Status ?? new TargetStatus();
        return new
        {
            target.Name,
            target.Kind,
            Connection = new
            {
                connection.Host,
                Port = connection.Port == 0 ? (uint?)null : connection.Port,
                Database = NullIfEmpty(connection.Database),
                Options = Printer.Sorted(connection.Options),
                CaCertificates = NullIfEmpty(connection.CaCertificates),
                CertificatePin = NullIfEmpty(connection.CertificatePin),
            },
            target.Account,
            SecondAccount = NullIfEmpty(target.SecondAccount),
            target.AdminSecret,
            target.ManagesAdminSecret,
            Strategy = Strategy(target.Strategy),
            PasswordPolicy = policy is null ? null : new
            {
                Length = policy.Length == 0 ? (uint?)null : policy.Length,
                Alphabet = NullIfEmpty(policy.Alphabet),
                policy.RequireLower,
                policy.RequireUpper,
                policy.RequireDigit,
                policy.RequireSymbol,
            },
            Schedule = schedule is null ? null : new
            {
                IntervalSeconds = Seconds(schedule.Interval),
                Cron = NullIfEmpty(schedule.Cron),
                WindowStart = NullIfEmpty(schedule.WindowStart),
                WindowEnd = NullIfEmpty(schedule.WindowEnd),
                MaxJitterSeconds = Seconds(schedule.MaxJitter),
            },
            Status = new
            {
                State = Name(status.State),
                status.Version,
                status.Paused,
                status.Drifted,
                DriftedAt = Printer.Time(status.DriftedAt),
                LastRotatedAt = Printer.Time(status.LastRotatedAt),
                NextRotationAt = Printer.Time(status.NextRotationAt),
                LastCheckedAt = Printer.Time(status.LastCheckedAt),
                LastError = NullIfEmpty(status.LastError),
                status.ConsecutiveFailures,
                CurrentAccount = NullIfEmpty(status.CurrentAccount),
                PendingStep = NullIfEmpty(status.PendingStep),
                TransportMode = NullIfEmpty(status.TransportMode),
                TransportWarning = NullIfEmpty(status.TransportWarning),
            },
        };
    }

    /// <summary>The JSON document of a rotation event (an element of <c>target history --json</c>, <c>event</c> of <c>target rotate --json</c>).</summary>
    public static object Json(RotationEvent e) => new
    {
        e.Id,
        StartedAt = Printer.Time(e.StartedAt),
        FinishedAt = Printer.Time(e.FinishedAt),
        e.Trigger,
        Outcome = Name(e.Outcome),
        Step = NullIfEmpty(e.Step),
        Reason = NullIfEmpty(e.Reason),
        e.Version,
        Account = NullIfEmpty(e.Account),
    };

    /// <summary>A <c>target list</c> row; see <see cref="ListHeaders"/>.</summary>
    public static string[] ListRow(Target target)
    {
        var status = target.Status ?? new TargetStatus();
        return
        [
            target.Name,
            target.Kind,
            status.CurrentAccount.Length > 0 ? status.CurrentAccount : target.Account,
            Name(status.State),
            status.Version.ToString(CultureInfo.InvariantCulture),
            Printer.Human(status.LastRotatedAt),
            Printer.Human(status.NextRotationAt),
            Notes(status),
        ];
    }

    /// <summary>A <c>target history</c> row; see <see cref="HistoryHeaders"/>.</summary>
    public static string[] HistoryRow(RotationEvent e) =>
    [
        Printer.Human(e.FinishedAt ?? e.StartedAt),
        DashIfEmpty(e.Trigger),
        Name(e.Outcome),
        DashIfEmpty(e.Account),
        e.Version.ToString(CultureInfo.InvariantCulture),
        DashIfEmpty(e.Step),
        DashIfEmpty(e.Reason),
    ];

    /// <summary>What needs a person's eye, for the last column of <c>target list</c>: paused, drifted since when, failures.</summary>
    public static string Notes(TargetStatus status)
    {
        var notes = new List<string>(3);
        if (status.Paused)
        {
            notes.Add("paused");
        }
        if (status.Drifted)
        {
            notes.Add(status.DriftedAt is null ? "drifted" : $"drifted since {Printer.Human(status.DriftedAt)}");
        }
        if (status.ConsecutiveFailures > 0)
        {
            notes.Add($"{status.ConsecutiveFailures} failure{(status.ConsecutiveFailures == 1 ? "" : "s")}");
        }
        if (status.TransportWarning.Length > 0)
        {
            notes.Add($"tls unverified ({status.TransportMode})");
        }
        return notes.Count == 0 ? "-" : string.Join(", ", notes);
    }

    /// <summary>
    /// An enum value as the CLI prints it: the proto name without its prefix, lower-case, words
    /// joined by '-' (<c>TARGET_STATE_NEEDS_ATTENTION</c> → <c>needs-attention</c>). A value this
    /// build does not know (a newer server) prints as its number.
    /// </summary>
    public static string Name<T>(T value)
        where T : struct, Enum
    {
        var text = value.ToString();
        if (!Enum.IsDefined(value))
        {
            return text;
        }
        var name = new StringBuilder(text.Length + 4);
        foreach (var c in text)
        {
            if (char.IsUpper(c) && name.Length > 0)
            {
                name.Append('-');
            }
            name.Append(char.ToLowerInvariant(c));
        }
        return name.ToString();
    }

    /// <summary>The TLS line of <c>target show</c>: the mode, the trust it checks against, and what is weaker than verified TLS.</summary>
    private static string Transport(TargetConnection connection, TargetStatus status)
    {
        if (status.TransportMode.Length == 0)
        {
            return "-";
        }
        var trust = new List<string>(2);
        if (connection.CaCertificates.Length > 0)
        {
            trust.Add("the target's CA certificates");
        }
        if (connection.CertificatePin.Length > 0)
        {
            trust.Add($"key pinned {connection.CertificatePin}");
        }
        var line = status.TransportMode + (trust.Count > 0 ? $" ({string.Join(", ", trust)})" : "");
        return status.TransportWarning.Length == 0 ? line : $"{line}; WARNING: {status.TransportWarning}";
    }

    /// <summary>Unspecified is single-user (rotation.proto).</summary>
    public static string Strategy(RotationStrategy strategy) =>
        strategy == RotationStrategy.Unspecified ? Name(RotationStrategy.SingleUser) : Name(strategy);

    private static List<(string, string)> Fields(Target target)
    {
        var connection = target.Connection ?? new TargetConnection();
        var status = target.Status ?? new TargetStatus();
        var options = string.Join(", ", Printer.Sorted(connection.Options).Select(kv => $"{kv.Key}={kv.Value}"));
        var fields = new List<(string, string)>
        {
            ("Name", target.Name),
            ("Kind", target.Kind),
            ("Host", connection.Port == 0 ? connection.Host : $"{connection.Host}:{connection.Port}"),
            ("Database", DashIfEmpty(connection.Database)),
            ("Options", DashIfEmpty(options)),
            ("TLS", Transport(connection, status)),
            ("Account", target.Account),
            ("Second Account", DashIfEmpty(target.SecondAccount)),
            ("Strategy", Strategy(target.Strategy)),
            ("Admin Secret", target.AdminSecret),
            ("Manages Admin", target.ManagesAdminSecret ? "yes (rotations update the admin secret)" : "no"),
            ("Schedule", Schedule(target.Schedule)),
            ("Window", target.Schedule is { WindowStart.Length: > 0 } s ? $"{s.WindowStart}-{s.WindowEnd} UTC" : "any time"),
            ("Max Jitter", target.Schedule?.MaxJitter is { } jitter ? DurationParser.Format(jitter.ToTimeSpan()) : "default"),
            ("Password Policy", Policy(target.PasswordPolicy)),
            ("State", Name(status.State)),
            ("Paused", status.Paused ? "yes" : "no"),
            ("Drifted", !status.Drifted ? "no" : status.DriftedAt is null ? "yes" : $"since {Printer.Human(status.DriftedAt)}"),
            ("Version", status.Version.ToString(CultureInfo.InvariantCulture)),
            ("Current Account", DashIfEmpty(status.CurrentAccount)),
            ("Last Rotated", Printer.Human(status.LastRotatedAt)),
            ("Next Rotation", Printer.Human(status.NextRotationAt)),
            ("Last Checked", Printer.Human(status.LastCheckedAt)),
            ("Failures", status.ConsecutiveFailures.ToString(CultureInfo.InvariantCulture)),
            ("Last Error", DashIfEmpty(status.LastError)),
        };
        if (status.PendingStep.Length > 0)
        {
            fields.Add(("Pending Step", status.PendingStep));
        }
        return fields;
    }

    private static string Schedule(RotationSchedule? schedule) => schedule switch
    {
        { Interval: { } interval } => $"every {DurationParser.Format(interval.ToTimeSpan())}",
        { Cron.Length: > 0 } => $"cron '{schedule.Cron}' UTC",
        _ => "-",
    };

    private static string Policy(PasswordPolicy? policy)
    {
        if (policy is null)
        {
            return "default (32 characters: letters, digits, '-', '_'; requires lower, upper, digit)";
        }
        var required = new[] { ("lower", policy.RequireLower), ("upper", policy.RequireUpper), ("digit", policy.RequireDigit), ("symbol", policy.RequireSymbol) }
            .Where(c => c.Item2).Select(c => c.Item1).ToList();
        var length = policy.Length == 0 ? "32" : policy.Length.ToString(CultureInfo.InvariantCulture);
        var alphabet = policy.Alphabet is "" or DefaultAlphabet ? "letters, digits, '-', '_'" : $"from '{policy.Alphabet}'";
        return $"{length} characters: {alphabet}; requires {(required.Count == 0 ? "nothing" : string.Join(", ", required))}";
    }

    private static long? Seconds(Google.Protobuf.WellKnownTypes.Duration? duration) => (long?)duration?.ToTimeSpan().TotalSeconds;

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    private static string DashIfEmpty(string value) => value.Length == 0 ? "-" : value;
}
