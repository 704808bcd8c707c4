namespace Vault.Server.Auth;

/// <summary>Deletes expired tokens' records once an hour, on the reaper's schedule (see <see cref="TokenManager.TidyAsync"/>).</summary>
public sealed class TokenTidy(TokenManager tokens, TimeProvider clock) : IReaperPass
{
    private static readonly TimeSpan Interval = TimeSpan.FromHours(1);
    private long _lastUnixMs;

    public async Task ReapAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (now - _lastUnixMs < Interval.TotalMilliseconds)
        {
            return;
        }
        _lastUnixMs = now;
        await tokens.TidyAsync(cancellationToken);
    }
}
