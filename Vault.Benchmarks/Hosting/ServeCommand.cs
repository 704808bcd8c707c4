using Microsoft.AspNetCore.Builder;
using Vault.Server.Hosting;

namespace Vault.Benchmarks.Hosting;

/// <summary>
/// The hidden subcommands that run one server in its own process, so that its CPU and memory
/// can be read apart from the load generator's:
/// <c>serve-vault --data-dir DIR [--tls CERT KEY]</c> and <c>serve-echo [--tls CERT KEY]</c>.
/// The server prints <c>listening URI</c> on one stdout line once it accepts calls, and runs
/// until its stdin closes (the parent exits or closes it) or it is signalled.
/// </summary>
internal static class ServeCommand
{
    public const string Vault = "serve-vault";
    public const string Echo = "serve-echo";
    public const string ReadyPrefix = "listening ";

    public static bool Handles(IReadOnlyList<string> args) => args.Count > 0 && args[0] is Vault or Echo;

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string? dataDir = null;
        string? targetCaFile = null;
        string? metricsListen = null;
        string? storageConnectionFile = null;
        string listen = "127.0.0.1:0";
        string? nodeId = null;
        string? leaseTtl = null;
        TlsFiles? tls = null;
        for (var i = 1; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--data-dir" when i + 1 < args.Count:
                    dataDir = args[++i];
                    break;
                case "--metrics-listen" when i + 1 < args.Count:
                    metricsListen = args[++i];
                    break;
                case "--target-ca-file" when i + 1 < args.Count:
                    targetCaFile = args[++i];
                    break;
                case "--storage-connection-file" when i + 1 < args.Count:
                    storageConnectionFile = args[++i];
                    break;
                case "--listen" when i + 1 < args.Count:
                    listen = args[++i];
                    break;
                case "--node-id" when i + 1 < args.Count:
                    nodeId = args[++i];
                    break;
                case "--lease-ttl" when i + 1 < args.Count:
                    leaseTtl = args[++i];
                    break;
                case "--tls" when i + 2 < args.Count:
                    // The server side only loads the files; the thumbprint is what clients check.
                    tls = new TlsFiles(args[i + 1], args[i + 2], Sha256Thumbprint: "");
                    i += 2;
                    break;
                default:
                    await Console.Error.WriteLineAsync($"{args[0]}: unexpected argument '{args[i]}'");
                    return 2;
            }
        }
        if (args[0] == Vault && dataDir is null)
        {
            await Console.Error.WriteLineAsync($"{Vault}: --data-dir is required");
            return 2;
        }

        await using var app = args[0] == Vault ? BuildVault(dataDir!, targetCaFile, metricsListen, storageConnectionFile, tls, listen, nodeId, leaseTtl) : EchoHost.Build(tls);
        await app.StartAsync();
        Console.Out.WriteLine(ReadyPrefix + HostAddress.Of(app));
        Console.Out.Flush();

        // Stdin is a pipe from the parent: it reads EOF when the parent closes it or dies.
        var stdinClosed = Task.Run(() => Console.In.ReadToEnd());
        var stopping = new TaskCompletionSource();
        using var registration = app.Lifetime.ApplicationStopping.Register(() => stopping.TrySetResult());
        await Task.WhenAny(stdinClosed, stopping.Task);
        await app.StopAsync();
        return 0;
    }

    // As BenchmarkVault did in-process before: the real host, its store and audit under dataDir.
    private static WebApplication BuildVault(string dataDir, string? targetCaFile, string? metricsListen, string? storageConnectionFile, TlsFiles? tls, string listen, string? nodeId, string? leaseTtl)
    {
        string[] args = ["--data-dir", dataDir, "--listen", listen];
        if (nodeId is not null)
        {
            // One of several nodes: the others reach it where it listens.
            args = [.. args, $"--Vault:NodeId={nodeId}", $"--Vault:AdvertiseAddress={listen}"];
            if (leaseTtl is not null)
            {
                args = [.. args, $"--Vault:LeaderLeaseTtl={leaseTtl}"];
            }
        }
        if (targetCaFile is not null)
        {
            args = [.. args, $"--Vault:Rotation:TargetCaFile={targetCaFile}"];
        }
        if (metricsListen is not null)
        {
            args = [.. args, "--metrics-listen", metricsListen];
        }
        if (tls is not null)
        {
            args = [.. args, "--tls-cert", tls.CertFile, "--tls-key", tls.KeyFile];
        }
        if (storageConnectionFile is not null)
        {
            args = [.. args, "--Vault:StorageKind=postgres", $"--Vault:StorageConnectionFile={storageConnectionFile}"];
        }
        return VaultServerHost.Build(args, builder => HostAddress.QuietLogging(builder.Logging));
    }
}
