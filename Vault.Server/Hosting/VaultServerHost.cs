using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Audit;
using Vault.Server.Backup;
using Vault.Server.Cluster;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Grpc;
using Vault.Server.Identity;
using Vault.Server.Idempotency;
using Vault.Server.Leases;
using Vault.Server.Rotation;
using Vault.Rotators;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Vault.Server.Secrets;
using Vault.Server.Storage;
using Vault.Server.Telemetry;
using Vault.Server.Usage;
using Vault.Server.Telemetry.Events;

namespace Vault.Server.Hosting;

/// <summary>Builds the vault's ASP.NET Core host: configuration, Kestrel, services, endpoints.</summary>
public static class VaultServerHost
{
    private static readonly Dictionary<string, string> SwitchMappings = new(StringComparer.Ordinal)
    {
        ["--data-dir"] = "Vault:DataDir",
        ["--listen"] = "Vault:Listen",
        ["--metrics-listen"] = "Vault:MetricsListen",
        ["--metrics-token-file"] = "Vault:MetricsTokenFile",
        ["--tls-cert"] = "Vault:TlsCertFile",
        ["--tls-key"] = "Vault:TlsKeyFile",
        ["--insecure-plaintext"] = "Vault:InsecurePlaintext",
        ["--dev"] = "Vault:Dev",
        ["--dev-root-token"] = "Vault:DevRootToken",
        ["--node-id"] = "Vault:NodeId",
        ["--advertise-address"] = "Vault:AdvertiseAddress",
    };

    private const int StreamWindowBytes = 64 * 1024;

    private static readonly HashSet<string> Flags = new(StringComparer.Ordinal) { "--dev", "--insecure-plaintext" };

    /// <summary>The thread pool's worker threads made at once, without its slow injection (see <see cref="EnoughPoolThreads"/>).</summary>
    internal const int MinWorkerThreads = 32;

    /// <summary>
    /// Some work still waits synchronously on a pool thread for a short while: a read that misses
    /// the store's cache takes its read lock, which waits while the applier moves a large batch of
    /// changes into the data file (a revocation storm deletes thousands of leases in a second).
    /// With the pool's default minimum (one thread per core) a few such waits left no thread for
    /// requests, and the pool adds threads only every half second or so: reads stalled 150–430 ms
    /// (docs/BENCHMARKS.md, "Revocation storm"). Idle threads cost little; requests waiting for one
    /// cost their p99.
    /// </summary>
    private static void EnoughPoolThreads()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        if (workers < MinWorkerThreads)
        {
            ThreadPool.SetMinThreads(MinWorkerThreads, io);
        }
    }

    /// <summary>Builds the server from command-line arguments and standard configuration.</summary>
    /// <exception cref="ValidationException">The configuration is unusable (the message says why).</exception>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        EnoughPoolThreads();
        var normalized = NormalizeFlags(args);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = normalized });
        builder.Configuration.AddCommandLine(normalized, SwitchMappings);
        configure?.Invoke(builder);

        var options = builder.Configuration.GetSection(VaultServerOptions.Section).Get<VaultServerOptions>() ?? new VaultServerOptions();
        if (!options.Dev && string.IsNullOrEmpty(options.DataDir))
        {
            throw new ValidationException("data-dir", "is required (use --data-dir DIR, Vault__DataDir, or --dev)");
        }
        if (options.StorageKind is not (StorageOptions.LiteDb or StorageOptions.Postgres))
        {
            throw new ValidationException("storage-kind", $"must be {StorageOptions.LiteDb} or {StorageOptions.Postgres}, not '{options.StorageKind}'");
        }
        if (options.StorageKind == StorageOptions.Postgres)
        {
            // Checked now, with a clear message, rather than when the store opens.
            Storage.Postgres.PostgresConnection.Open(options.StorageConnectionFile).Dispose();
        }
        if (!string.IsNullOrEmpty(options.NodeId))
        {
            if (options.StorageKind != StorageOptions.Postgres)
            {
                throw new ValidationException("node-id", "needs storage-kind postgres: several nodes share one PostgreSQL database");
            }
            if (string.IsNullOrEmpty(options.AdvertiseAddress))
            {
                throw new ValidationException("advertise-address", "is required with node-id: the HOST:PORT where the other nodes reach this one");
            }
            ListenAddress.Parse(options.AdvertiseAddress, "advertise-address");
            if (!string.IsNullOrEmpty(options.ClusterCaFile))
            {
                try
                {
                    var roots = new X509Certificate2Collection();
                    roots.ImportFromPemFile(options.ClusterCaFile);
                    if (roots.Count == 0)
                    {
                        throw new ValidationException("cluster-ca-file", $"{options.ClusterCaFile} holds no certificate");
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
                {
                    throw new ValidationException("cluster-ca-file", $"cannot read {options.ClusterCaFile}: {ex.Message}");
                }
            }
            if (options.Dev)
            {
                throw new ValidationException("node-id", "is not allowed with --dev");
            }
        }
        if (!options.Dev && !string.IsNullOrEmpty(options.DevRootToken))
        {
            throw new ValidationException("dev-root-token", "is only allowed with --dev");
        }
        var listen = ListenAddress.Parse(options.Listen);
        var certificate = LoadCertificate(options);
        if (certificate is not null)
        {
            builder.Services.AddSingleton(services => new ServerCertificate(
                options.TlsCertFile!, options.TlsKeyFile!, certificate, services.GetRequiredService<ILogger<ServerCertificate>>()));
        }
        if (certificate is null && !listen.IsLoopback && !options.InsecurePlaintext)
        {
            throw new ValidationException("listen", $"refusing plaintext on non-loopback address {options.Listen}: give --tls-cert and --tls-key, or --insecure-plaintext");
        }
        // Checked before anything is created (a dev server's temporary directory, the store, the
        // keys), so a taken address refuses start-up in one line with nothing to clean up. Program
        // still handles the address being taken between this check and Kestrel's bind.
        listen.EnsureFree(options.Listen);
        if (!string.IsNullOrEmpty(options.MetricsListen))
        {
            var metrics = ListenAddress.Parse(options.MetricsListen, "metrics-listen");
            metrics.EnsureFree(options.MetricsListen, "metrics-listen");
            if (metrics.Address.Equals(listen.Address) && metrics.Port == listen.Port && metrics.Port != 0)
            {
                throw new ValidationException("metrics-listen", "must differ from --listen: the metrics listener serves nothing of the API");
            }
        }
        // Like the listeners: a bad webhook setting refuses start-up in one line naming it.
        WebhookSettings.Read(builder.Configuration.GetSection(EventOptions.Section).Get<EventOptions>());
        if (options.Dev && string.IsNullOrEmpty(options.DataDir))
        {
            options.DataDir = Directory.CreateTempSubdirectory("vault-dev-").FullName;
            builder.Configuration[$"{VaultServerOptions.Section}:DataDir"] = options.DataDir;
            builder.Configuration[$"{VaultServerOptions.Section}:DataDirIsTemporary"] = "true";
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Request admission (RequestAdmission) leaves a large request that waits for room unread.
            // Kestrel sends a connection WINDOW_UPDATE only once half the connection window has been
            // read by requests, so with the defaults (768 KiB per stream, 1 MiB per connection) a
            // few waiting uploads hold enough of the window unread that the admitted requests on the
            // same connection never get the rest of their bodies: a deadlock. Each stream may hold
            // at most 64 KiB unread, and the connection window is more than twice every stream's
            // share, so at least half of it is always left for the requests being read.
            kestrel.Limits.Http2.InitialStreamWindowSize = StreamWindowBytes;
            kestrel.Limits.Http2.InitialConnectionWindowSize = (2 * kestrel.Limits.Http2.MaxStreamsPerConnection * StreamWindowBytes) + (1024 * 1024);
            kestrel.Listen(listen.Address, listen.Port, endpoint =>
            {
                if (certificate is null)
                {
                    endpoint.Protocols = HttpProtocols.Http2;
                }
                else
                {
                    endpoint.Protocols = HttpProtocols.Http1AndHttp2;
                    var served = endpoint.ApplicationServices.GetRequiredService<ServerCertificate>();
                    endpoint.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        // Said here rather than left to the OS's OpenSSL policy, which differs
                        // between distributions: no TLS 1.0 or 1.1 whatever the machine allows.
                        SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        // Asked on each handshake, so a certificate replaced on disk is served
                        // to new connections without a restart.
                        ServerCertificateSelector = (_, _) => served.Current,
                    });
                }
            });
        });

        builder.Services.AddVaultServer(builder.Configuration);
        var app = builder.Build();
        app.Use(UndecodableRequestsAreInvalidArgument);
        var admission = app.Services.GetRequiredService<RequestAdmission>();
        app.Use((context, next) => admission.InvokeAsync(context, next));
        if (app.Services.GetRequiredService<Cluster.NodeRole>().IsClustered)
        {
            // After admission: a call a standby buffers to forward counts against its bound too.
            var forwarding = app.Services.GetRequiredService<Cluster.WriteForwarding>();
            app.Use((context, next) => forwarding.InvokeAsync(context, next));
        }
        app.MapGrpcService<SystemGrpcService>();
        app.MapGrpcService<KvGrpcService>();
        app.MapGrpcService<TokenGrpcService>();
        app.MapGrpcService<PolicyGrpcService>();
        app.MapGrpcService<AuditGrpcService>();
        app.MapGrpcService<EventGrpcService>();
        app.MapGrpcService<AppRoleGrpcService>();
        app.MapGrpcService<IdentityGrpcService>();
        app.MapGrpcService<UserpassGrpcService>();
        app.MapGrpcService<MfaGrpcService>();
        app.MapGrpcService<AccessGrpcService>();
        app.MapGrpcService<LdapGrpcService>();
        app.MapGrpcService<TargetGrpcService>();
        app.MapGrpcService<LeaseGrpcService>();
        app.MapGrpcService<ReportGrpcService>();
        app.MapGrpcService<HealthServiceImpl>();
        app.MapGrpcReflectionService();
        return app;
    }

    /// <summary>
    /// Registers every area (each registers its services, options and stored document types) and
    /// fills the areas' options from the host's configuration (<see cref="VaultServerOptions"/>, the
    /// <c>Vault</c> section): no area takes the host's options itself.
    /// </summary>
    public static IServiceCollection AddVaultServer(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<VaultServerOptions>()
            .Bind(configuration.GetSection(VaultServerOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<StorageOptions>().Configure<IOptions<VaultServerOptions>>((storage, host) =>
        {
            storage.DataDir = host.Value.DataDir!;
            storage.ReservedDiskBytes = host.Value.ReservedDiskBytes;
            storage.Kind = host.Value.StorageKind;
            storage.ConnectionFile = host.Value.StorageConnectionFile;
            storage.NodeId = string.IsNullOrEmpty(host.Value.NodeId) ? null : host.Value.NodeId;
        });
        services.AddOptions<Cluster.ClusterOptions>().Configure<IOptions<VaultServerOptions>>((cluster, host) =>
        {
            cluster.NodeId = string.IsNullOrEmpty(host.Value.NodeId) ? null : host.Value.NodeId;
            cluster.AdvertiseAddress = host.Value.AdvertiseAddress;
            cluster.LeaseTtl = host.Value.LeaderLeaseTtl;
            cluster.Tls = !string.IsNullOrEmpty(host.Value.TlsCertFile);
            cluster.CaFile = host.Value.ClusterCaFile;
            cluster.MaxMessageBytes = host.Value.MaxMessageBytes;
        });
        services.AddOptions<AuditOptions>().Configure<IOptions<VaultServerOptions>>((audit, host) =>
        {
            audit.Directory = Path.Combine(host.Value.DataDir!, "audit");
            audit.MaxFileBytes = host.Value.AuditMaxFileBytes;
            audit.Flush = host.Value.AuditFlush;
            audit.ReadOnlyFlushWindow = host.Value.AuditReadOnlyFlushWindow;
        });
        services.AddOptions<KvOptions>().Configure<IOptions<VaultServerOptions>>((kv, host) => kv.MaxSecretBytes = host.Value.MaxSecretBytes);
        services.AddOptions<RotationOptions>().Bind(configuration.GetSection(RotationOptions.Section));
        services.AddOptions<Telemetry.TelemetryOptions>().Configure<IOptions<VaultServerOptions>>((telemetry, host) =>
        {
            telemetry.MetricsListen = host.Value.MetricsListen;
            telemetry.MetricsTokenFile = host.Value.MetricsTokenFile;
        });
        services.AddOptions<LeaseOptions>().Bind(configuration.GetSection(LeaseOptions.Section));
        services.AddOptions<Usage.UsageOptions>().Bind(configuration.GetSection(Usage.UsageOptions.Section));
        services.AddOptions<EventOptions>().Bind(configuration.GetSection(EventOptions.Section))
            .Configure<IOptions<VaultServerOptions>>((events, host) => events.SpoolDirectory = Path.Combine(host.Value.DataDir!, "events"));

        services.AddVaultCluster();
        services.AddVaultStorage();
        services.AddVaultBarrier();
        services.AddVaultAuth();
        services.AddVaultIdentity();
        services.AddVaultKv();
        services.AddVaultAudit();
        services.AddVaultRotation();
        services.AddVaultLeases();
        services.AddVaultUsage();
        services.AddVaultIdempotency();
        services.AddVaultBackup();
        services.AddVaultTelemetry(export: !string.IsNullOrEmpty(configuration[$"{VaultServerOptions.Section}:MetricsListen"]));
        services.AddVaultEvents();
        services.AddVaultGrpc();

        services.AddSingleton<HealthServiceImpl>();
        services.AddHostedService<SealHealthPublisher>();
        services.AddHostedService<DevModeInitializer>();
        services.AddSingleton<ListenerStatus>();
        services.AddHostedService(sp => sp.GetRequiredService<ListenerStatus>());
        services.AddSingleton<RequestAdmission>();
        // A secret of the largest allowed size must fit in one message (grpc-dotnet's default is 4 MiB).
        services.AddOptions<global::Grpc.AspNetCore.Server.GrpcServiceOptions>()
            .Configure<IOptions<VaultServerOptions>>((grpc, vault) => grpc.MaxReceiveMessageSize = vault.Value.MaxMessageBytes);
        return services;
    }

    /// <summary>
    /// grpc-dotnet decodes a request before any interceptor runs and answers a body that is not
    /// the message with UNKNOWN "Exception was thrown by handler.". For vault.v1 calls the
    /// interceptor maps every handler failure itself, so that answer can only mean an undecodable
    /// request: say so, as INVALID_ARGUMENT. The status is still in the (unsent) headers of a
    /// trailers-only response when the endpoint returns.
    /// </summary>
    private static async Task UndecodableRequestsAreInvalidArgument(Microsoft.AspNetCore.Http.HttpContext context, Func<Task> next)
    {
        await next();
        if (context.Response.HasStarted
            || !context.Request.Path.StartsWithSegments("/vault.v1", StringComparison.OrdinalIgnoreCase) && !(context.Request.Path.Value?.StartsWith("/vault.v1.", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            return;
        }
        var headers = context.Response.Headers;
        if (headers["grpc-status"] == "2" && headers["grpc-message"] == "Exception was thrown by handler.")
        {
            headers["grpc-status"] = "3";
            headers["grpc-message"] = "request: not a valid message for this method";
        }
    }

    private static X509Certificate2? LoadCertificate(VaultServerOptions options)
    {
        if (string.IsNullOrEmpty(options.TlsCertFile) && string.IsNullOrEmpty(options.TlsKeyFile))
        {
            return null;
        }
        if (string.IsNullOrEmpty(options.TlsCertFile) || string.IsNullOrEmpty(options.TlsKeyFile))
        {
            throw new ValidationException("tls-cert", "--tls-cert and --tls-key must be given together");
        }
        try
        {
            return ServerCertificate.Read(options.TlsCertFile, options.TlsKeyFile);
        }
        catch (Exception ex) when (ex is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new ValidationException("tls-cert", $"cannot load the certificate or key: {ex.Message}");
        }
    }

    private static string[] NormalizeFlags(string[] args)
    {
        var result = new List<string>(args.Length);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            var nextIsValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
            if (Flags.Contains(arg) && !(nextIsValue && args[i + 1] is "true" or "false"))
            {
                result.Add(arg + "=true");
            }
            else
            {
                result.Add(arg);
            }
        }
        return [.. result];
    }
}
