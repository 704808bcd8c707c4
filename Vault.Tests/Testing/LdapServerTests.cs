using System.Diagnostics;
using System.DirectoryServices.Protocols;
using System.Formats.Asn1;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Vault.Tests.Testing;

[Collection("ldap")]
public sealed class LdapServerTests(LdapServer server, ITestOutputHelper output)
{
    private const string PasswordModifyOid = "1.3.6.1.4.1.4203.1.11.1";

    [Fact]
    public async Task CreatedUser_BindsWithItsPassword_AndIsRefusedAnother()
    {
        var dn = await server.CreateUserAsync("first");

        Assert.EndsWith($",ou=people,{server.BaseDn}", dn, StringComparison.Ordinal);
        Assert.True(await server.CanBindAsync(dn, "first"));
        Assert.False(await server.CanBindAsync(dn, "wrong"));
        Assert.True(await server.CanBindAsync(server.AdminDn, server.AdminPassword));
    }

    [Fact]
    public async Task Ldappasswd_ByTheAdmin_ChangesAnotherUsersPassword()
    {
        var dn = await server.CreateUserAsync("first");

        var result = await RunAsync("ldappasswd", "-x", "-H", server.Uri, "-D", server.AdminDn, "-w", server.AdminPassword, "-s", "second", dn);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.True(await server.CanBindAsync(dn, "second"));
        Assert.False(await server.CanBindAsync(dn, "first"));
    }

    // The rotator's way: the password-modify extended operation through System.DirectoryServices.Protocols.
    [Fact]
    public async Task PasswordModifyExtendedRequest_ByTheAdmin_ChangesAnotherUsersPassword()
    {
        var dn = await server.CreateUserAsync("first");

        var response = await server.SendAsAdminAsync(new ExtendedRequest(PasswordModifyOid, PasswordModifyValue(dn, "second")));

        Assert.Equal(ResultCode.Success, response.ResultCode);
        Assert.True(await server.CanBindAsync(dn, "second"));
        Assert.False(await server.CanBindAsync(dn, "first"));
        Assert.Contains($"EXT oid={PasswordModifyOid}", server.LogText(), StringComparison.Ordinal);
        Assert.DoesNotContain("second", server.LogText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task User_MayChangeOwnPassword_ButNotAnothers()
    {
        var self = await server.CreateUserAsync("mine");
        var other = await server.CreateUserAsync("theirs");

        var own = await RunAsync("ldappasswd", "-x", "-H", server.Uri, "-D", self, "-w", "mine", "-s", "changed", self);
        var foreign = await RunAsync("ldappasswd", "-x", "-H", server.Uri, "-D", self, "-w", "changed", "-s", "stolen", other);

        Assert.True(own.ExitCode == 0, own.Output);
        Assert.NotEqual(0, foreign.ExitCode);
        Assert.True(await server.CanBindAsync(self, "changed"));
        Assert.True(await server.CanBindAsync(other, "theirs"));
    }

    [Fact]
    public async Task Log_HoldsTheBinds()
    {
        var dn = await server.CreateUserAsync("pw");

        Assert.True(await server.CanBindAsync(dn, "pw"));

        Assert.Contains($"BIND dn=\"{dn}\" method=128", server.LogText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task StopAndRestart_DownInBetween_ThenSamePortAndEntries()
    {
        var clock = Stopwatch.StartNew();
        await using var ldap = await LdapServer.StartAsync();
        output.WriteLine($"slapd start-up (slapadd + start + first bind): {clock.ElapsedMilliseconds} ms");
        var dn = await ldap.CreateUserAsync("pw");
        var port = ldap.Port;

        await ldap.StopAsync();
        Assert.False(ldap.IsRunning);
        var down = await Assert.ThrowsAsync<LdapException>(() => ldap.CanBindAsync(dn, "pw"));
        output.WriteLine($"bind while down: {down.ErrorCode} {down.Message}");

        clock.Restart();
        await ldap.RestartAsync();
        output.WriteLine($"slapd restart: {clock.ElapsedMilliseconds} ms");
        Assert.Equal(port, ldap.Port);
        Assert.True(await ldap.CanBindAsync(dn, "pw"));
    }

    [Fact]
    public async Task Kill_ThenRestart_KeepsEveryCompletedWrite()
    {
        await using var ldap = await LdapServer.StartAsync();
        var dn = await ldap.CreateUserAsync("first");
        await ldap.SendAsAdminAsync(new ExtendedRequest(PasswordModifyOid, PasswordModifyValue(dn, "second")));

        await ldap.KillAsync();
        Assert.False(ldap.IsRunning);
        await Assert.ThrowsAsync<LdapException>(() => ldap.CanBindAsync(dn, "second"));

        await ldap.RestartAsync();
        Assert.True(await ldap.CanBindAsync(dn, "second"));
    }

    [Fact]
    public async Task Dispose_StopsTheServerAndDeletesItsDirectory()
    {
        var ldap = await LdapServer.StartAsync();
        var directory = ldap.Directory;

        await ldap.DisposeAsync();

        Assert.False(Directory.Exists(directory));
        using var client = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(ldap.Host, ldap.Port));
    }

    // PasswdModifyRequestValue ::= SEQUENCE { userIdentity [0] OCTET STRING OPTIONAL,
    //     oldPasswd [1] OCTET STRING OPTIONAL, newPasswd [2] OCTET STRING OPTIONAL }   (RFC 3062)
    private static byte[] PasswordModifyValue(string dn, string newPassword)
    {
        var writer = new AsnWriter(AsnEncodingRules.BER);
        using (writer.PushSequence())
        {
            writer.WriteOctetString(Encoding.UTF8.GetBytes(dn), new Asn1Tag(TagClass.ContextSpecific, 0));
            writer.WriteOctetString(Encoding.UTF8.GetBytes(newPassword), new Asn1Tag(TagClass.ContextSpecific, 2));
        }
        return writer.Encode();
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string fileName, params string[] args)
    {
        ServerHost.RequireBinaries("ldap-utils", "apt-get install -y slapd ldap-utils", $"/usr/bin/{fileName}");
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }
}
