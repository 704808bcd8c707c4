using System.Threading.Channels;

namespace Vault.Server.Grpc;

/// <summary>
/// Wakes a server stream when what it watches has changed: a one-slot signal (changes while the
/// stream is writing fold into one, and the stream reads the state again anyway), and a re-read at
/// least once a minute, so a missed signal costs at most that.
/// </summary>
internal sealed class ChangeSignal
{
    private static readonly TimeSpan Reread = TimeSpan.FromMinutes(1);

    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public void Raise() => _signal.Writer.TryWrite(true);

    /// <summary>Waits for a change, or a minute.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (the watcher went away).</exception>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Reread);
        try
        {
            await _signal.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }
}
