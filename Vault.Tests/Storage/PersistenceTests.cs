using System.Text;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Storage;

public sealed class PersistenceTests
{
    [Fact]
    public async Task ThousandSecrets_SurviveRestartAndUnseal_ByteForByte_AndNoPlaintextReachesTheDataDirectory()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var random = new Random(20261126);
        var written = new Dictionary<string, Dictionary<string, string>>();
        for (var i = 0; i < 1000; i++)
        {
            // Unicode, quotes, newlines and long values: everything must come back exactly.
            written[$"persist/{i % 17}/secret-{i}"] = new Dictionary<string, string>
            {
                ["password"] = $"pw-{i}-{Guid.NewGuid():N}-\u00e9\u4e2d\"\n'",
                ["blob"] = RandomText(random, random.Next(1, 2000)),
            };
        }
        foreach (var chunk in written.Chunk(50))
        {
            await Task.WhenAll(chunk.Select(async pair =>
            {
                var request = new PutSecretRequest { Path = pair.Key };
                request.Data.Add(pair.Value);
                await vault.Kv.PutAsync(request, vault.As());
            }));
        }

        await vault.RestartAsync();
        await vault.UnsealAsync();
        foreach (var (path, data) in written)
        {
            var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As());
            Assert.Equal(data.OrderBy(p => p.Key), read.Data.OrderBy(p => p.Key));
        }

        var secrets = written.Values.SelectMany(d => d.Values).Where(v => v.Length >= 12).Append(TestVault.Passphrase).Append(vault.RootToken);
        DataDirectoryScan.AssertNoneAppear(vault.DataDir, secrets);
    }

    private static string RandomText(Random random, int length)
    {
        var builder = new StringBuilder(length);
        for (var i = 0; i < length; i++)
        {
            builder.Append((char)random.Next(0x21, 0x7e));
        }
        return builder.ToString();
    }
}
