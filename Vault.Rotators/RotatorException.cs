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

/// <summary>A rotator step failed. The message never contains a password.</summary>
public sealed class RotatorException : Exception
{
    public RotatorException(RotatorFailure failure, string message, Exception? innerException = null)
        : base(message, innerException) => Failure = failure;

    public RotatorException() : this(RotatorFailure.Other, "rotator failed") { }

    public RotatorException(string message) : this(RotatorFailure.Other, message) { }

    public RotatorException(string message, Exception innerException) : this(RotatorFailure.Other, message, innerException) { }

    public RotatorFailure Failure { get; }
}
