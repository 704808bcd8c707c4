namespace Vault.Server.Leases;

/// <summary>
/// The free accounts of one check-out set and the callers waiting for one, in arrival order: an
/// account handed back goes straight to the longest waiter, so nobody can jump the queue. Kept in
/// memory by <see cref="CheckoutSets"/>; built from the stored leases when first needed.
/// </summary>
internal sealed class SetGate(IReadOnlyList<string> targets, IReadOnlyList<string> lent)
{
    private readonly Lock _lock = new();
    private IReadOnlyList<string> _targets = targets;
    private readonly HashSet<string> _busy = new(lent, StringComparer.Ordinal);
    private readonly LinkedList<TaskCompletionSource<string>> _waiters = new();

    /// <summary>Callers waiting for an account now.</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiters.Count;
            }
        }
    }

    public async Task<string?> AcquireAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        TaskCompletionSource<string> waiter;
        LinkedListNode<TaskCompletionSource<string>> node;
        lock (_lock)
        {
            if (_waiters.Count == 0 && _targets.FirstOrDefault(t => !_busy.Contains(t)) is { } free)
            {
                _busy.Add(free);
                return free;
            }
            if (wait <= TimeSpan.Zero)
            {
                return null;
            }
            waiter = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiters.AddLast(waiter);
        }
        try
        {
            return await waiter.Task.WaitAsync(wait, cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_lock)
            {
                if (node.List is not null)
                {
                    _waiters.Remove(node);
                }
                else if (waiter.Task.IsCompletedSuccessfully)
                {
                    // Handed an account just as the wait ended: pass it on.
                    ReleaseLocked(waiter.Task.Result);
                }
            }
            if (ex is OperationCanceledException)
            {
                throw;
            }
            return null;
        }
    }

    public void SetTargets(IReadOnlyList<string> targets)
    {
        lock (_lock)
        {
            _targets = targets;
        }
    }

    public void Release(string target)
    {
        lock (_lock)
        {
            ReleaseLocked(target);
        }
    }

    private void ReleaseLocked(string target)
    {
        // The longest waiter gets it directly: no one can jump the queue in between. An
        // account no longer in the set goes to no one.
        while (_targets.Contains(target, StringComparer.Ordinal) && _waiters.First is { } first)
        {
            _waiters.RemoveFirst();
            if (first.Value.TrySetResult(target))
            {
                return;
            }
        }
        _busy.Remove(target);
    }
}
