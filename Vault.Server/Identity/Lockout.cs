namespace Vault.Server.Identity;

/// <summary>
/// How failed attempts lock a person out, for a password and for a second-factor code alike:
/// <see cref="FreeFailures"/> failures in a row lock for <see cref="First"/>, each further lockout
/// in a row twice as long, at most <see cref="Max"/>; a success starts the count again.
/// </summary>
public static class Lockout
{
    public const int FreeFailures = 5;
    public static readonly TimeSpan First = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan Max = TimeSpan.FromDays(1);

    /// <summary>How long the <paramref name="lockouts"/>-th lockout in a row lasts.</summary>
    public static TimeSpan For(int lockouts) =>
        TimeSpan.FromTicks(Math.Min(Max.Ticks, First.Ticks << Math.Clamp(lockouts - 1, 0, 20)));
}
