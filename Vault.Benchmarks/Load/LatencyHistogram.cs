using System.Numerics;

namespace Vault.Benchmarks.Load;

/// <summary>
/// A fixed-size log-linear histogram of latencies in nanoseconds (the HdrHistogram layout with
/// 128 sub-buckets per power of two): recording is an index computation and an increment, no
/// allocation, and every value is kept to within 1/128 (under 0.8 %). Not thread-safe: one per
/// worker, merged at the end.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 7;
    private const int SubBucketCount = 1 << SubBucketBits;
    // Values below this are counted exactly, one bucket each.
    private const int LinearLimit = SubBucketCount * 2;
    private readonly long[] _counts = new long[LinearLimit + ((63 - SubBucketBits) * SubBucketCount)];

    public long Count { get; private set; }

    public long MaxNanos { get; private set; }

    /// <summary>The exact sum of the recorded values (not bucketed), for the mean.</summary>
    public long SumNanos { get; private set; }

    public double MeanNanos => Count == 0 ? 0 : (double)SumNanos / Count;

    public void Record(long nanos)
    {
        nanos = Math.Max(nanos, 0);
        _counts[IndexOf(nanos)]++;
        Count++;
        SumNanos += nanos;
        MaxNanos = Math.Max(MaxNanos, nanos);
    }

    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }
        Count += other.Count;
        SumNanos += other.SumNanos;
        MaxNanos = Math.Max(MaxNanos, other.MaxNanos);
    }

    /// <summary>The smallest recorded value (to bucket precision) that <paramref name="percentile"/> % of samples do not exceed.</summary>
    public long PercentileNanos(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100.0 * Count));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(HighestValueOf(i), MaxNanos);
            }
        }
        return MaxNanos;
    }

    private static int IndexOf(long value)
    {
        if (value < LinearLimit)
        {
            return (int)value;
        }
        var shift = (63 - BitOperations.LeadingZeroCount((ulong)value)) - SubBucketBits;
        var mantissa = (int)(value >> shift);
        return LinearLimit + ((shift - 1) * SubBucketCount) + (mantissa - SubBucketCount);
    }

    private static long HighestValueOf(int index)
    {
        if (index < LinearLimit)
        {
            return index;
        }
        var shift = ((index - LinearLimit) / SubBucketCount) + 1;
        var mantissa = ((index - LinearLimit) % SubBucketCount) + SubBucketCount;
        return ((long)(mantissa + 1) << shift) - 1;
    }
}
