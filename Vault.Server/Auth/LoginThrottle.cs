using System.Collections.Concurrent;

namespace Vault.Server.Auth;

/// <summary>
/// Slows down guessing: after a few failed logins against one role, each further attempt must
/// wait twice as long as the last (capped), and an attempt that comes too soon is refused without
/// being checked. A success resets the role's count. Keyed by role name, so only existing roles
/// are tracked and spraying made-up role ids cannot flush a real role's count.
/// </summary>
public sealed class LoginThrottle(TimeProvider clock)
{
    public const int FreeFailures = 3;
    private static readonly TimeSpan BaseDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, (int Failures, DateTimeOffset NotBefore)> _state = new(StringComparer.Ordinal);

    /// <summary>
    /// Admits one attempt. Past the free failures it also books the next slot at once, so
    /// attempts sent in parallel cannot all be tried before the first failure is counted.
    /// </summary>
    /// <exception cref="RateLimitedException">The role has failed too often, too recently.</exception>
    public void Check(string roleKey)
    {
        var now = clock.GetUtcNow();
        var refused = false;
        var notBefore = now;
        _state.AddOrUpdate(roleKey,
            _ => (0, now),
            (_, s) =>
            {
                if (now < s.NotBefore)
                {
                    refused = true;
                    notBefore = s.NotBefore;
                    return s;
                }
                refused = false;
                return s.Failures >= FreeFailures ? (s.Failures, now + Delay(s.Failures)) : s;
            });
        if (refused)
        {
            throw new RateLimitedException($"too many failed logins for this role; retry in {Math.Ceiling((notBefore - now).TotalSeconds):0} s");
        }
    }

    public void Failed(string roleKey) =>
        _state.AddOrUpdate(roleKey,
            _ => (1, clock.GetUtcNow()),
            (_, s) =>
            {
                var failures = s.Failures + 1;
                var next = clock.GetUtcNow() + (failures <= FreeFailures ? TimeSpan.Zero : Delay(failures));
                return (failures, next > s.NotBefore ? next : s.NotBefore);
            });

    private static TimeSpan Delay(int failures) =>
        TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, BaseDelay.Ticks << Math.Clamp(failures - FreeFailures - 1, 0, 16)));

    public void Succeeded(string roleId) => _state.TryRemove(roleId, out _);
}
