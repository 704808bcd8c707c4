using System.Collections.Concurrent;

namespace Vault.Server.Auth;

/// <summary>
/// Slows down guessing: after a few failed logins against one role id, each further attempt
/// must wait twice as long as the last (capped), and an attempt that comes too soon is refused
/// without being checked. A success resets the role's count.
/// </summary>
public sealed class LoginThrottle(TimeProvider clock)
{
    public const int FreeFailures = 3;
    private static readonly TimeSpan BaseDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(30);
    private const int MaxTracked = 100_000;
    private readonly ConcurrentDictionary<string, (int Failures, DateTimeOffset NotBefore)> _state = new(StringComparer.Ordinal);

    /// <exception cref="RateLimitedException">The role has failed too often, too recently.</exception>
    public void Check(string roleId)
    {
        if (_state.TryGetValue(roleId, out var s) && clock.GetUtcNow() < s.NotBefore)
        {
            var wait = s.NotBefore - clock.GetUtcNow();
            throw new RateLimitedException($"too many failed logins for this role; retry in {Math.Ceiling(wait.TotalSeconds):0} s");
        }
    }

    public void Failed(string roleId)
    {
        if (_state.Count > MaxTracked)
        {
            _state.Clear();
        }
        _state.AddOrUpdate(roleId,
            _ => (1, clock.GetUtcNow()),
            (_, s) =>
            {
                var failures = s.Failures + 1;
                var delay = failures <= FreeFailures
                    ? TimeSpan.Zero
                    : TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, BaseDelay.Ticks << Math.Min(failures - FreeFailures - 1, 16)));
                return (failures, clock.GetUtcNow() + delay);
            });
    }

    public void Succeeded(string roleId) => _state.TryRemove(roleId, out _);
}
