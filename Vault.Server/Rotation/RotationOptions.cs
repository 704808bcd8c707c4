using System.ComponentModel.DataAnnotations;

namespace Vault.Server.Rotation;

/// <summary>Rotation settings, bound from "Vault:Rotation".</summary>
public sealed class RotationOptions
{
    public const string Section = "Vault:Rotation";

    /// <summary>The first retry after a failed rotation waits this long; each further failure doubles it.</summary>
    public TimeSpan RetryBase { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Retries never wait longer than this.</summary>
    public TimeSpan RetryMax { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often each target's current password is tried against its system to find drift.</summary>
    public TimeSpan DriftCheckInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How many rotations and checks run at once.</summary>
    [Range(1, 256)]
    public int MaxConcurrent { get; set; } = 4;

    /// <summary>
    /// Alternating users: the account that stopped being current at the last rotation is not
    /// changed again until this long after it, so a client that read it just before the switch
    /// can still open its connection.
    /// </summary>
    public TimeSpan AlternatingGrace { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a rotator waits for a target system to answer a connection.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The longest an admin statement may run on a target system, lock waits included; the
    /// system itself enforces it (PostgreSQL <c>statement_timeout</c>/<c>lock_timeout</c>, MariaDB
    /// <c>max_statement_time</c>, MySQL lock wait timeouts). Reconciling an interrupted rotation
    /// waits this long (plus a margin) after the vault starts, so a statement a killed process
    /// sent cannot take effect after reconcile has decided.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan StatementTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// PEM file of the CA certificates a target's TLS certificate is checked against when the
    /// target carries no CA bundle of its own, instead of the machine's trusted CAs (an
    /// organisation's internal CA, given once). Read at start-up.
    /// </summary>
    public string? TargetCaFile { get; set; }

    /// <summary>
    /// Fault injection for crash tests: after this step (<c>create</c>, <c>set</c>, <c>test</c>,
    /// <c>finish</c>), the rotation logs a line and stops there until the process dies. Create and
    /// finish are durable by then; set and test are done on the system, and recorded (set) or not
    /// (test) without waiting, since recovery does not need them. Never set it in production.
    /// </summary>
    public string? HaltAfterStep { get; set; }
}

/// <summary>Told after each step of a rotation (see <see cref="RotationOptions.HaltAfterStep"/>); the seam crash tests use to stop a rotation between steps.</summary>
public interface IRotationStepObserver
{
    Task AfterStepAsync(string target, string step, CancellationToken cancellationToken);
}

/// <summary>Does nothing unless <see cref="RotationOptions.HaltAfterStep"/> is set; then halts there for good.</summary>
public sealed class HaltingStepObserver(Microsoft.Extensions.Options.IOptions<RotationOptions> options, Microsoft.Extensions.Logging.ILogger<HaltingStepObserver> logger) : IRotationStepObserver
{
    public async Task AfterStepAsync(string target, string step, CancellationToken cancellationToken)
    {
        if (string.Equals(options.Value.HaltAfterStep, step, StringComparison.Ordinal))
        {
            RotationLog.HaltedAfterStep(logger, target, step);
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
    }
}
