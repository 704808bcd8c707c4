using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Identity;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Identity;

/// <summary>
/// TOTP as a person sees it: enrol, confirm with a first code, then every login needs a code
/// (each accepted once, within a step either side of now), recovery codes work once, wrong codes
/// lock the second factor, an admin resets a lost one, and a policy rule can ask for a code
/// validated recently for the token (step-up). The vault's clock is a fake one the tests move.
/// </summary>
public sealed class MfaTests(ClockedVault fixture) : IClassFixture<ClockedVault>
{
    private const string Password = "a long passphrase for carol";

    private TestVault Vault => fixture.Vault;

    private UserpassService.UserpassServiceClient Users => new(Vault.Channel);

    private MfaService.MfaServiceClient Mfa => new(Vault.Channel);

    private sealed record Person(string Name, string Token, byte[] Secret, IReadOnlyList<string> RecoveryCodes);

    /// <summary>A user with <paramref name="policies"/>, logged in, enrolled and confirmed (with the code of the current step).</summary>
    private async Task<Person> EnrolledAsync(params string[] policies)
    {
        var name = $"mfa-{Guid.NewGuid():N}"[..24];
        await Users.PutUserAsync(new PutUserRequest { User = new User { Name = name, Policies = { policies } }, Password = Password }, Vault.As());
        var token = (await Users.LoginAsync(new UserpassLoginRequest { Username = name, Password = Password })).Token;
        var enrolled = await Mfa.EnrollAsync(new EnrollMfaRequest(), Vault.As(token));
        var secret = SecretOf(enrolled.OtpauthUri);
        await Mfa.ValidateAsync(new ValidateMfaRequest { Code = CodeAt(secret, 0) }, Vault.As(token));
        return new Person(name, token, secret, enrolled.RecoveryCodes);
    }

    private static byte[] SecretOf(string uri)
    {
        Assert.StartsWith("otpauth://totp/Vault%3A", uri, StringComparison.Ordinal);
        Assert.Contains("&issuer=Vault&algorithm=SHA1&digits=6&period=30", uri, StringComparison.Ordinal);
        return Otp.SecretOf(uri);
    }

    /// <summary>The code of the step <paramref name="stepsFromNow"/> steps from the vault's now.</summary>
    private string CodeAt(byte[] secret, int stepsFromNow) => Otp.Code(secret, fixture.Clock.GetUtcNow(), stepsFromNow);

    private Task<UserpassLoginResponse> LoginAsync(string name, string? code = null, string password = Password) =>
        Users.LoginAsync(new UserpassLoginRequest { Username = name, Password = password, MfaCode = code ?? "" }).ResponseAsync;

    private void NextStep() => fixture.Clock.Advance(Totp.Period);

    [Fact]
    public async Task AnEnrolledPerson_NeedsACode_AfterTheirPassword_AndGetsATokenMarkedValidated()
    {
        var person = await EnrolledAsync();
        NextStep();

        var required = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => LoginAsync(person.Name));
        Assert.StartsWith("mfa required", required.Status.Detail, StringComparison.Ordinal);
        // A wrong password is refused as ever: the code is asked for only after the right one.
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, CodeAt(person.Secret, 0), password: "not the password"));

        var login = await LoginAsync(person.Name, CodeAt(person.Secret, 0));

        Assert.Equal(fixture.Clock.GetUtcNow().ToUnixTimeSeconds(), login.Info.MfaValidatedAt.ToDateTimeOffset().ToUnixTimeSeconds());
        var status = await Mfa.GetMfaAsync(new GetMfaRequest { Entity = person.Name }, Vault.As());
        Assert.True(status.Enrolled);
        Assert.Equal(10u, status.RecoveryCodesLeft);
    }

    [Fact]
    public async Task ACode_IsAcceptedOnce_AndOnlyWithinAStepOfNow()
    {
        var person = await EnrolledAsync();
        NextStep();
        NextStep();
        NextStep();

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, CodeAt(person.Secret, -2)));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, CodeAt(person.Secret, 2)));
        await LoginAsync(person.Name, CodeAt(person.Secret, -1));
        var replayed = await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, CodeAt(person.Secret, -1)));
        Assert.Contains("mfa code refused", replayed.Status.Detail, StringComparison.Ordinal);
        await LoginAsync(person.Name, CodeAt(person.Secret, 1));
        // The step after was used: this step's code, earlier, is refused too.
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, CodeAt(person.Secret, 0)));
    }

    [Fact]
    public async Task ARecoveryCode_WorksOnce()
    {
        var person = await EnrolledAsync();

        await LoginAsync(person.Name, person.RecoveryCodes[3]);

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, person.RecoveryCodes[3]));
        Assert.Equal(9u, (await Mfa.GetMfaAsync(new GetMfaRequest { Entity = person.Name }, Vault.As())).RecoveryCodesLeft);
        await LoginAsync(person.Name, person.RecoveryCodes[4].ToUpperInvariant());
    }

    [Fact]
    public async Task FiveWrongCodes_LockTheSecondFactor_UntilItsLockoutEnds()
    {
        var person = await EnrolledAsync();
        NextStep();
        for (var i = 0; i < 5; i++)
        {
            await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, "000000" == CodeAt(person.Secret, 0) ? "111111" : "000000"));
        }

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(person.Name, CodeAt(person.Secret, 0)));

        fixture.Clock.Advance(Lockout.First + TimeSpan.FromSeconds(1));
        await LoginAsync(person.Name, CodeAt(person.Secret, 0));
    }

    [Fact]
    public async Task AnAdminReset_LetsThePersonInWithTheirPasswordAlone_AndEnrolAgain()
    {
        var person = await EnrolledAsync();
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Mfa.EnrollAsync(new EnrollMfaRequest(), Vault.As(person.Token)).ResponseAsync);

        await Mfa.ResetMfaAsync(new ResetMfaRequest { Entity = person.Name }, Vault.As());

        var login = await LoginAsync(person.Name);
        Assert.Null(login.Info.MfaValidatedAt);
        var again = await Mfa.EnrollAsync(new EnrollMfaRequest(), Vault.As(login.Token));
        Assert.NotEqual(person.Secret, SecretOf(again.OtpauthUri));
    }

    [Fact]
    public async Task AMethodThatRequiresMfa_RefusesSomeoneNotEnrolled_UntilAnAdminEnrolsThem_AndTheirFirstCodeConfirmsIt()
    {
        var name = $"mfa-{Guid.NewGuid():N}"[..24];
        await Users.PutUserAsync(new PutUserRequest { User = new User { Name = name }, Password = Password }, Vault.As());
        await Users.SetConfigAsync(new SetUserpassConfigRequest { Config = new UserpassConfig { RequireMfa = true } }, Vault.As());
        try
        {
            var refused = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => LoginAsync(name));
            Assert.Contains("not enrolled", refused.Status.Detail, StringComparison.Ordinal);
            await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name, password: "not the password"));

            var enrolled = await Mfa.EnrollAsync(new EnrollMfaRequest { Entity = name }, Vault.As());
            Assert.True((await Mfa.GetMfaAsync(new GetMfaRequest { Entity = name }, Vault.As())).Pending);
            await Rpc.FailsWith(StatusCode.FailedPrecondition, () => LoginAsync(name));

            var login = await LoginAsync(name, CodeAt(SecretOf(enrolled.OtpauthUri), 0));

            Assert.NotNull(login.Info.MfaValidatedAt);
            Assert.True((await Mfa.GetMfaAsync(new GetMfaRequest { Entity = name }, Vault.As())).Enrolled);
        }
        finally
        {
            await Users.SetConfigAsync(new SetUserpassConfigRequest { Config = new UserpassConfig { RequireMfa = false } }, Vault.As());
        }
    }

    [Fact]
    public async Task AProgramsToken_CannotEnrol()
    {
        var program = await Vault.Tokens.CreateAsync(new CreateTokenRequest(), Vault.As());

        var refused = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Mfa.EnrollAsync(new EnrollMfaRequest(), Vault.As(program.Token)).ResponseAsync);

        Assert.Contains("MFA is for people", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AStepUpRule_NeedsACodeValidatedWithinItsWindow_EvenWhereABroaderRuleGrantsTheSame()
    {
        var prod = $"prod-{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{prod}/db", Data = { ["password"] = "production" } }, Vault.As());
        await Vault.Policies.PutAsync(new PutPolicyRequest
        {
            Policy = new Policy
            {
                Name = prod,
                Rules =
                {
                    new PolicyRule { Path = $"kv/{prod}/*", Capabilities = { "read" }, MfaWithinSeconds = 300 },
                    new PolicyRule { Path = "kv/*", Capabilities = { "list" } },
                    new PolicyRule { Path = $"kv/{prod}/db", Capabilities = { "read" } },
                },
            },
        }, Vault.As());
        var person = await EnrolledAsync(prod);
        NextStep();
        // A token with the same policy that has never seen a code.
        var plain = (await Vault.Tokens.CreateAsync(new CreateTokenRequest { Orphan = true, Policies = { prod } }, Vault.As())).Token;
        var required = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{prod}/db" }, Vault.As(plain)).ResponseAsync);
        Assert.StartsWith("mfa required", required.Status.Detail, StringComparison.Ordinal);

        var login = await LoginAsync(person.Name, CodeAt(person.Secret, 0));
        Assert.Equal("production", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{prod}/db" }, Vault.As(login.Token))).Data["password"]);

        fixture.Clock.Advance(TimeSpan.FromSeconds(301));
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{prod}/db" }, Vault.As(login.Token)).ResponseAsync);
        await Vault.Kv.ListAsync(new ListSecretsRequest { Prefix = $"{prod}/" }, Vault.As(login.Token));

        await Mfa.ValidateAsync(new ValidateMfaRequest { Code = CodeAt(person.Secret, 0) }, Vault.As(login.Token));
        Assert.Equal("production", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{prod}/db" }, Vault.As(login.Token))).Data["password"]);
    }

    [Fact]
    public async Task TheSecretCodesAndRecoveryCodes_NeverReachTheDataFilesOrTheAudit()
    {
        var person = await EnrolledAsync();
        NextStep();
        var code = CodeAt(person.Secret, 0);
        await LoginAsync(person.Name, code);
        await LoginAsync(person.Name, person.RecoveryCodes[0]);

        DataDirectoryScan.AssertNoneAppear(Vault.DataDir, [Totp.Base32(person.Secret), Convert.ToBase64String(person.Secret), .. person.RecoveryCodes, $"\"{code}\""]);
    }
}
