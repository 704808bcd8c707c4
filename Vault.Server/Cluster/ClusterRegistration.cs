using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Vault.Server.Storage.Postgres;

namespace Vault.Server.Cluster;

public static class ClusterRegistration
{
    /// <summary>This node's role; for one of several, the leadership loop and the routing of calls.</summary>
    public static IServiceCollection AddVaultCluster(this IServiceCollection services)
    {
        services.AddOptions<ClusterOptions>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<ClusterOptions>>().Value.NodeId is { } node ? NodeRole.Clustered(node, sp.GetRequiredService<IOptions<ClusterOptions>>().Value.AdvertiseAddress!) : NodeRole.Alone());
        services.AddSingleton<ITermSource>(sp => sp.GetRequiredService<NodeRole>());
        services.AddSingleton<WriteForwarding>();
        services.AddSingleton<LeadershipLoop>();
        services.AddHostedService(sp => sp.GetRequiredService<LeadershipLoop>());
        return services;
    }
}
