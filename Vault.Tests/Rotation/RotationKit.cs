using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>One kind of system the vault rotates passwords on, seen from a test: make an account, try a login, describe a target.</summary>
public interface ITargetSystem
{
    string Kind { get; }

    /// <summary>The admin credential the vault will be given (as a KV secret).</summary>
    (string Username, string Password) Admin { get; }

    /// <summary>Creates a uniquely named account with <paramref name="password"/>; returns it as a target's <c>account</c>.</summary>
    Task<string> CreateAccountAsync(string password);

    Task<bool> CanLoginAsync(string account, string password);

    TargetConnection Connection { get; }
}

/// <summary>Shorthands the rotation tests share.</summary>
public static class RotationKit
{
    public static TargetService.TargetServiceClient Targets(this TestVault vault) => new(vault.Channel);

    public static string UniqueName(string prefix = "t") => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 40)];

    /// <summary>Stores the system's admin credential as a KV secret; returns its path.</summary>
    public static async Task<string> PutAdminSecretAsync(KvService.KvServiceClient kv, CallOptions auth, ITargetSystem system)
    {
        var path = $"admin/{system.Kind}-{Guid.NewGuid():N}";
        await kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["username"] = system.Admin.Username, ["password"] = system.Admin.Password } }, auth);
        return path;
    }

    public static Target Describe(ITargetSystem system, string name, string account, string adminSecret) => new()
    {
        Name = name,
        Kind = system.Kind,
        Connection = system.Connection,
        Account = account,
        AdminSecret = adminSecret,
    };

    /// <summary>Polls until <paramref name="condition"/> holds for the target, or fails with its last state.</summary>
    public static async Task<Target> WaitForTargetAsync(TargetService.TargetServiceClient targets, CallOptions auth, string name, Func<Target, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        Target? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await targets.GetTargetAsync(new GetTargetRequest { Name = name }, auth);
                if (condition(last))
                {
                    return last;
                }
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.FailedPrecondition)
            {
                // Restarting or sealed: keep polling.
            }
            await Task.Delay(100);
        }
        throw new Xunit.Sdk.XunitException($"target {name}: timed out after {timeout.TotalSeconds:F0} s waiting for {what}; last state: {last}");
    }

    public static async Task<IReadOnlyList<RotationEvent>> HistoryAsync(TargetService.TargetServiceClient targets, CallOptions auth, string name) =>
        (await targets.ListTargetHistoryAsync(new ListTargetHistoryRequest { Name = name, Limit = 1000 }, auth)).Events;
}
