namespace Vault.Rotators;

/// <summary>Why a rotator step failed, so the caller can decide between retrying, rolling back and reporting.</summary>
public enum RotatorFailure
{
    /// <summary>The system could not be reached or timed out; retry later.</summary>
    Unreachable,
    /// <summary>The admin credential was refused or lacks the privilege for this step.</summary>
    AdminRefused,
    /// <summary>The system's own password policy rejected the new password.</summary>
    PasswordRejected,
    /// <summary>The account to change does not exist on the system.</summary>
    AccountNotFound,
    /// <summary>Anything else the system reported.</summary>
    Other,
}

/// <summary>What a failed step may have done to the system: whether a rollback or a reconciling login is needed.</summary>
public enum RotatorEffect
{
    /// <summary>The request may have reached the system and been applied (the connection broke after it was sent): only a login can tell.</summary>
    Unknown,
    /// <summary>Nothing was sent: the system was never reached or never authenticated the admin (connection refused, host not found, connect timeout, admin login refused).</summary>
    NotSent,
    /// <summary>The system answered the request with an error (refused, rejected, timed out waiting for a lock): it changed nothing.</summary>
    Refused,
}

/// <summary>A rotator step failed. The message never contains a password.</summary>
public sealed class RotatorException : Exception
{
    /// <param name="failure">Why it failed.</param>
    /// <param name="message">What failed, naming the step and the system; never a password.</param>
    /// <param name="innerException">The driver's exception, when it holds no password.</param>
    /// <param name="effect">
    /// What the step may have done; null takes the failure's usual meaning: <see cref="RotatorEffect.Refused"/>
    /// for an admin refused, a password rejected or an account not found, else <see cref="RotatorEffect.Unknown"/>.
    /// </param>
    public RotatorException(RotatorFailure failure, string message, Exception? innerException = null, RotatorEffect? effect = null)
        : base(message, innerException)
    {
        Failure = failure;
        Effect = effect ?? (failure is RotatorFailure.AdminRefused or RotatorFailure.PasswordRejected or RotatorFailure.AccountNotFound
            ? RotatorEffect.Refused
            : RotatorEffect.Unknown);
    }

    public RotatorException() : this(RotatorFailure.Other, "rotator failed") { }

    public RotatorException(string message) : this(RotatorFailure.Other, message) { }

    public RotatorException(string message, Exception innerException) : this(RotatorFailure.Other, message, innerException) { }

    public RotatorFailure Failure { get; }

    /// <summary>Whether the system may have applied the step; <see cref="RotatorEffect.Unknown"/> unless the rotator knows better.</summary>
    public RotatorEffect Effect { get; }

    /// <summary>Whether the step certainly changed nothing on the system (never sent, or answered with an error).</summary>
    public bool ChangedNothing => Effect is RotatorEffect.NotSent or RotatorEffect.Refused;

    /// <summary>The same failure, now known to have been raised before anything was sent.</summary>
    public RotatorException AsNotSent() => Effect == RotatorEffect.NotSent ? this : new RotatorException(Failure, Message, InnerException, RotatorEffect.NotSent);
}
