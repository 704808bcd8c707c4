using System.Diagnostics;
using System.Runtime.InteropServices;
using Vault.Benchmarks;
using Vault.Benchmarks.Hosting;

if (ServeCommand.Handles(args))
{
    return await ServeCommand.RunAsync(args);
}
if (UnsealTiming.Handles(args))
{
    return await UnsealTiming.RunAsync(args);
}
if (FailoverTiming.Handles(args))
{
    return await FailoverTiming.RunAsync(args);
}
if (LeaseScale.Handles(args))
{
    return await LeaseScale.RunAsync(args);
}
if (RevocationStorm.Handles(args))
{
    return await RevocationStorm.RunAsync(args);
}
if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(BenchmarkOptions.Usage);
    return 0;
}
BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args);
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"vault-bench: {ex.Message}");
    Console.Error.WriteLine(BenchmarkOptions.Usage);
    return 2;
}

// Ctrl-C or SIGTERM: stop measuring, clean up (servers, PostgreSQL, temp files), report what was measured.
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});

var startedUtc = DateTime.UtcNow;
var clock = Stopwatch.StartNew();
// Certificates, vault data directories: everything of this run lives here and goes with it.
var runDirectory = Directory.CreateTempSubdirectory("vault-bench-").FullName;
string? interrupted = null;
var exitCode = 0;
var sweep = new Sweep(options, runDirectory);
try
{
    await sweep.RunAsync(stop.Token);
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("interrupted");
    interrupted = "interrupted";
    exitCode = 130;
}
catch (Exception ex)
{
    // Report the rows measured so far; the failure itself goes to stderr.
    Console.Error.WriteLine($"vault-bench: {ex}");
    interrupted = $"{ex.GetType().Name}: {ex.Message}";
    exitCode = 3;
}
finally
{
    await sweep.DisposeAsync();
    try
    {
        Directory.Delete(runDirectory, recursive: true);
    }
    catch (IOException ex)
    {
        Console.Error.WriteLine($"vault-bench: could not delete {runDirectory}: {ex.Message}");
    }
}

var info = new RunInfo(startedUtc, clock.Elapsed, sweep.Tls is not null, sweep.PostgresMaxConnections, interrupted);
Console.WriteLine(Report.Render(options, args, sweep.Results, sweep.LargePuts, info));
return exitCode != 0 ? exitCode : sweep.Results.Any(r => r.Errors > 0) || sweep.LargePuts.Any(r => r.PutErrors + r.ReadErrors > 0) ? 1 : 0;
