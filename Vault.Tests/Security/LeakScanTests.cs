using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>
/// Runs a workload that handles known secret values, tokens and passphrases, including the error
/// paths, with the server logging at Debug into memory; then greps the data directory, the audit
/// files, the log and every status detail the client saw for any of them.
/// </summary>
public sealed class LeakScanTests
{
    private readonly CapturingLoggerProvider _log = new();
    private readonly List<string> _secrets = [];
    private readonly List<string> _details = [];
    // One-time codes: six digits, looked for as whole numbers (not inside a longer one).
    private readonly List<string> _codes = [];

    [Fact]
    public async Task SecretsTokensAndPassphrases_NeverAppearInDataFilesAuditLogOrErrorDetails()
    {
        await using var vault = await StartLoggingVaultAsync();
        _secrets.Add(vault.RootToken);
        _secrets.Add(TestVault.Passphrase);
        await RunWorkloadAsync(vault);

        // The scan must be looking at something: the log has Debug lines, the audit has entries.
        Assert.Contains(_log.Lines, l => l.StartsWith("Debug ", StringComparison.Ordinal));
        var auditFiles = Directory.GetFiles(Path.Combine(vault.DataDir, "audit"), "*", SearchOption.AllDirectories);
        Assert.NotEmpty(auditFiles);
        Assert.Contains(auditFiles, f => File.ReadAllText(f).Contains("vault.v1.KvService/Put", StringComparison.Ordinal));

        DataDirectoryScan.AssertNoneAppear(vault.DataDir, _secrets);
        await AssertBackupHoldsNoneAsync(vault);
        foreach (var file in auditFiles)
        {
            AssertAbsent(File.ReadAllText(file), $"audit file {Path.GetFileName(file)}");
        }
        AssertAbsent(string.Join("\n", _log.Lines), "the server log");
        foreach (var detail in _details)
        {
            AssertAbsent(detail, "a status detail the client saw");
        }
    }

    /// <summary>A backup of all of it (its records, its audit trail, its header) holds none of them either.</summary>
    private async Task AssertBackupHoldsNoneAsync(TestVault vault)
    {
        var directory = Directory.CreateTempSubdirectory("vault-leak-backup-");
        try
        {
            var path = Path.Combine(directory.FullName, "vault.bak");
            await using (var file = File.Create(path))
            {
                using var call = vault.System.Backup(new BackupRequest(), vault.As());
                await foreach (var chunk in call.ResponseStream.ReadAllAsync())
                {
                    await file.WriteAsync(chunk.Data.Memory);
                }
            }
            Assert.True(new FileInfo(path).Length > 10_000, "the backup is too small to hold the workload");
            DataDirectoryScan.AssertNoneAppear(directory.FullName, _secrets);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task TokenPastedAsAnAccessor_IsNotWrittenToTheAuditOrLogInPlaintext()
    {
        // An operator who passes the token itself where an accessor belongs (lookup, renew,
        // revoke) must not find it in the audit trail, which stores tokens only as HMACs.
        await using var vault = await StartLoggingVaultAsync();
        var child = await vault.Tokens.CreateAsync(new CreateTokenRequest { Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, vault.As());
        _secrets.Add(child.Token);
        await CaptureAsync(async () => await vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = child.Token }, vault.As()));
        await CaptureAsync(async () => await vault.Tokens.RenewAsync(new RenewTokenRequest { Accessor = child.Token }, vault.As()));

        foreach (var file in Directory.GetFiles(Path.Combine(vault.DataDir, "audit")))
        {
            AssertAbsent(File.ReadAllText(file), $"audit file {Path.GetFileName(file)}");
        }
        AssertAbsent(string.Join("\n", _log.Lines), "the server log");
    }

    private Task<TestVault> StartLoggingVaultAsync() => TestVault.StartInitializedAsync(builder =>
    {
        builder.Logging.AddProvider(_log);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        // Overrides the Warning levels appsettings.json sets for Microsoft.AspNetCore and Grpc.
        builder.Logging.AddFilter<CapturingLoggerProvider>(category: null, LogLevel.Debug);
    });

    private async Task RunWorkloadAsync(TestVault vault)
    {
        var root = $"leak-{Guid.NewGuid():N}";
        var values = Enumerable.Range(0, 4).Select(i => $"s3cr3t-{i}-{Guid.NewGuid():N}").ToList();
        _secrets.AddRange(values);

        // Secrets written, overwritten, read, deleted and destroyed.
        await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/db", Data = { ["password"] = values[0], ["user"] = "app" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/db", Data = { ["password"] = values[1] } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/api", Data = { ["key"] = values[2] } }, vault.As());
        Assert.Equal(values[1], (await vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/db" }, vault.As())).Data["password"]);
        await vault.Kv.DeleteAsync(new DeleteSecretRequest { Path = $"{root}/api" }, vault.As());
        await vault.Kv.DestroyAsync(new DestroySecretRequest { Path = $"{root}/db", Versions = { 1 } }, vault.As());
        await new AuditService.AuditServiceClient(vault.Channel).HashAsync(new HashAuditRequest { Value = values[1] }, vault.As());

        // Tokens: created, used, renewed, revoked; a forged one tried.
        var policy = RpcMatrix.UniqueName();
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = RpcMatrix.PolicyNamed(policy, $"kv/{root}/api", "read") }, vault.As());
        var reader = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { policy }, Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, vault.As());
        var doomed = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { policy } }, vault.As());
        var forged = "vt_" + Convert.ToBase64String(Guid.NewGuid().ToByteArray()).TrimEnd('=');
        _secrets.AddRange([reader.Token, doomed.Token, forged]);
        await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As(reader.Token));
        await vault.Tokens.RenewAsync(new RenewTokenRequest(), vault.As(reader.Token));
        await vault.Tokens.RevokeAsync(new RevokeTokenRequest { Accessor = doomed.Info.Accessor }, vault.As());

        // Errors: bad paths carrying a secret value, an oversized value, denied, revoked and
        // forged tokens, a check-and-set conflict, a key with a control character.
        await CaptureAsync(async () => await vault.Kv.PutAsync(new PutSecretRequest { Path = "../escape", Data = { ["password"] = values[3] } }, vault.As()));
        await CaptureAsync(async () => await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}//x", Data = { ["password"] = values[3] } }, vault.As()));
        await CaptureAsync(async () => await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/ctl", Data = { ["bad\u0001key"] = values[3] } }, vault.As()));
        await CaptureAsync(async () => await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/big", Data = { ["v"] = values[3] + new string('x', 1024 * 1024) } }, vault.As()));
        await CaptureAsync(async () => await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/db", Cas = 1, Data = { ["password"] = values[3] } }, vault.As()));
        await CaptureAsync(async () => await vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/api", Data = { ["key"] = values[3] } }, vault.As(reader.Token)));
        await CaptureAsync(async () => await vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/db" }, vault.As(reader.Token)));
        await CaptureAsync(async () => await vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/api" }, vault.As(doomed.Token)));
        await CaptureAsync(async () => await vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/api" }, vault.As(forged)));
        await CaptureAsync(async () => await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "root" } }, vault.As(reader.Token)));

        // People: a user's password set, used, guessed until a lockout, changed, reset by an
        // admin; a password pasted as a username; the person's token used.
        var users = new UserpassService.UserpassServiceClient(vault.Channel);
        var person = $"leak-person-{Guid.NewGuid():N}"[..28];
        var passwords = Enumerable.Range(0, 4).Select(i => $"p4ssw0rd-{i}-{Guid.NewGuid():N}").ToList();
        _secrets.AddRange(passwords);
        await users.PutUserAsync(new PutUserRequest { User = new User { Name = person, Policies = { policy } }, Password = passwords[0] }, vault.As());
        var login = await users.LoginAsync(new UserpassLoginRequest { Username = person, Password = passwords[0] });
        _secrets.Add(login.Token);
        await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As(login.Token));
        await CaptureAsync(async () => await vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/db" }, vault.As(login.Token)));
        // MFA: enrolled, validated, a recovery code used, wrong codes tried; the secret (as the
        // URI carries it, and raw) and the recovery codes must appear nowhere but in the reply.
        var mfa = new MfaService.MfaServiceClient(vault.Channel);
        var enrolled = await mfa.EnrollAsync(new EnrollMfaRequest(), vault.As(login.Token));
        var base32 = enrolled.OtpauthUri.Split("secret=")[1].Split('&')[0];
        var secret = Otp.SecretOf(enrolled.OtpauthUri);
        _secrets.AddRange([base32, Convert.ToBase64String(secret), Convert.ToHexString(secret), Convert.ToHexStringLower(secret), .. enrolled.RecoveryCodes]);
        var code = Otp.Code(secret, DateTimeOffset.UtcNow);
        _codes.Add(code);
        await mfa.ValidateAsync(new ValidateMfaRequest { Code = code }, vault.As(login.Token));
        await CaptureAsync(async () => await mfa.ValidateAsync(new ValidateMfaRequest { Code = enrolled.RecoveryCodes[0] + "x" }, vault.As(login.Token)));
        await mfa.ValidateAsync(new ValidateMfaRequest { Code = enrolled.RecoveryCodes[1] }, vault.As(login.Token));
        await CaptureAsync(async () => await mfa.ValidateAsync(new ValidateMfaRequest { Code = enrolled.RecoveryCodes[1] }, vault.As(login.Token)));
        await CaptureAsync(async () => await users.LoginAsync(new UserpassLoginRequest { Username = person, Password = passwords[0] }));
        await users.LoginAsync(new UserpassLoginRequest { Username = person, Password = passwords[0], MfaCode = enrolled.RecoveryCodes[2] });
        await mfa.ResetMfaAsync(new ResetMfaRequest { Entity = person }, vault.As());

        await users.ChangePasswordAsync(new ChangePasswordRequest { Username = person, CurrentPassword = passwords[0], NewPassword = passwords[1] });
        for (var i = 0; i < 5; i++)
        {
            await CaptureAsync(async () => await users.LoginAsync(new UserpassLoginRequest { Username = person, Password = passwords[2] }));
        }
        await CaptureAsync(async () => await users.LoginAsync(new UserpassLoginRequest { Username = person, Password = passwords[1] }));
        await CaptureAsync(async () => await users.ChangePasswordAsync(new ChangePasswordRequest { Username = person, CurrentPassword = passwords[2], NewPassword = passwords[3] }));
        await CaptureAsync(async () => await users.LoginAsync(new UserpassLoginRequest { Username = passwords[3], Password = passwords[1] }));
        await CaptureAsync(async () => await users.PutUserAsync(new PutUserRequest { User = new User { Name = person }, Password = "short" }, vault.As()));
        await users.PutUserAsync(new PutUserRequest { User = new User { Name = person }, Password = passwords[3] }, vault.As());
        await users.LoginAsync(new UserpassLoginRequest { Username = person, Password = passwords[3] });

        // Seal, a wrong passphrase, the right one; a key rotation; a restart.
        var wrongPassphrase = $"wrong-passphrase-{Guid.NewGuid():N}";
        _secrets.Add(wrongPassphrase);
        await vault.System.SealAsync(new SealRequest(), vault.As());
        await CaptureAsync(async () => await vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/api" }, vault.As()));
        await CaptureAsync(async () => await vault.System.UnsealAsync(new UnsealRequest { Passphrase = wrongPassphrase }));
        await CaptureAsync(async () => await vault.System.UnsealAsync(new UnsealRequest { Passphrase = "short" }));
        await vault.UnsealAsync();
        await vault.System.RotateKeyAsync(new RotateKeyRequest(), vault.As());
        await CaptureAsync(async () => await vault.System.InitAsync(new InitRequest { Passphrase = wrongPassphrase, Kdf = TestVault.FastKdf }));
        await vault.RestartAsync();
        await vault.UnsealAsync();
        Assert.Equal(values[1], (await vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/db" }, vault.As())).Data["password"]);
    }

    /// <summary>Runs a call expected to fail and keeps everything the client was told about why.</summary>
    private async Task CaptureAsync(Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        _details.Add($"{ex.StatusCode} {ex.Status.Detail} {string.Join(" ", ex.Trailers.Select(t => $"{t.Key}={t.Value}"))}");
    }

    private void AssertAbsent(string text, string where)
    {
        foreach (var code in _codes)
        {
            Assert.False(System.Text.RegularExpressions.Regex.IsMatch(text, $"(?<![0-9]){code}(?![0-9])"), $"a one-time code appears in {where}");
        }
        foreach (var secret in _secrets)
        {
            Assert.False(text.Contains(secret, StringComparison.Ordinal), $"a secret, token or passphrase (starting '{secret[..6]}') appears in {where}");
        }
    }
}
