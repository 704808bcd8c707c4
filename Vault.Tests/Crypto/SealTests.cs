using Grpc.Core;
using Grpc.Health.V1;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Crypto;

public sealed class SealTests
{
    [Fact]
    public async Task Restart_ComesUpSealed_WrongPassphraseRefused_RightPassphraseUnseals()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var put = new PutSecretRequest { Path = "seal/check" };
        put.Data["k"] = "before-restart";
        await vault.Kv.PutAsync(put, vault.As());

        await vault.RestartAsync();
        var status = await vault.System.StatusAsync(new StatusRequest());
        Assert.True(status.Initialized);
        Assert.True(status.Sealed);

        var wrong = await Rpc.FailsWith(StatusCode.Unauthenticated, () => vault.System.UnsealAsync(new UnsealRequest { Passphrase = "not the passphrase" }));
        Assert.Contains("wrong passphrase", wrong.Status.Detail, StringComparison.Ordinal);
        Assert.True((await vault.System.StatusAsync(new StatusRequest())).Sealed);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "seal/check" }, vault.As()));

        var unsealed = await vault.System.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        Assert.False(unsealed.Sealed);
        var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = "seal/check" }, vault.As());
        Assert.Equal("before-restart", read.Data["k"]);
    }

    [Fact]
    public async Task WhileSealed_EveryRpcButStatusInitUnseal_IsFailedPrecondition_AndHealthIsNotServing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var health = new Health.HealthClient(vault.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);

        await vault.System.SealAsync(new SealRequest(), vault.As());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);

        var calls = new List<Func<Task>>
        {
            async () => await vault.Kv.PutAsync(new PutSecretRequest { Path = "a" }, vault.As()),
            async () => await vault.Kv.GetAsync(new GetSecretRequest { Path = "a" }, vault.As()),
            async () => await vault.Kv.ListAsync(new ListSecretsRequest(), vault.As()),
            async () => await vault.Kv.DeleteAsync(new DeleteSecretRequest { Path = "a" }, vault.As()),
            async () => await vault.Kv.UndeleteAsync(new UndeleteSecretRequest { Path = "a" }, vault.As()),
            async () => await vault.Kv.DestroyAsync(new DestroySecretRequest { Path = "a" }, vault.As()),
            async () => await vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = "a" }, vault.As()),
            async () => await vault.Kv.UpdateMetadataAsync(new UpdateMetadataRequest { Path = "a" }, vault.As()),
            async () => await vault.Kv.DeleteMetadataAsync(new DeleteMetadataRequest { Path = "a" }, vault.As()),
            async () => await vault.Tokens.CreateAsync(new CreateTokenRequest(), vault.As()),
            async () => await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As()),
            async () => await vault.Tokens.RenewAsync(new RenewTokenRequest(), vault.As()),
            async () => await vault.Tokens.RevokeAsync(new RevokeTokenRequest(), vault.As()),
            async () => await vault.Policies.PutAsync(new PutPolicyRequest(), vault.As()),
            async () => await vault.Policies.GetAsync(new GetPolicyRequest { Name = "p" }, vault.As()),
            async () => await vault.Policies.ListAsync(new ListPoliciesRequest(), vault.As()),
            async () => await vault.Policies.DeleteAsync(new DeletePolicyRequest { Name = "p" }, vault.As()),
            async () => await vault.System.SealAsync(new SealRequest(), vault.As()),
            async () => await vault.System.RotateKeyAsync(new RotateKeyRequest(), vault.As()),
        };
        foreach (var call in calls)
        {
            var ex = await Rpc.FailsWith(StatusCode.FailedPrecondition, call);
            Assert.Equal("vault is sealed", ex.Status.Detail);
        }
        // Status and unseal still answer.
        Assert.True((await vault.System.StatusAsync(new StatusRequest())).Sealed);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => vault.System.InitAsync(new InitRequest { Passphrase = "another passphrase", Kdf = TestVault.FastKdf }));
        await vault.UnsealAsync();
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
    }
}
