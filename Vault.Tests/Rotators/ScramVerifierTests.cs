using System.Security.Cryptography;
using System.Text;
using Vault.Rotators.Postgres;

namespace Vault.Tests.Rotators;

public sealed class ScramVerifierTests
{
    // RFC 7677, section 3: user "user", password "pencil".
    private const string RfcSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
    private const string ClientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    private const string ServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    private const string ClientFinalWithoutProof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    private const string RfcClientProof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    private const string RfcServerSignature = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    [Fact]
    public void Create_WithTheRfc7677Salt_GivesAVerifierThatAcceptsTheRfcExchange()
    {
        var verifier = ScramVerifier.Create("pencil", Convert.FromBase64String(RfcSalt), 4096);

        var (iterations, salt, storedKey, serverKey) = Split(verifier);
        Assert.Equal(4096, iterations);
        Assert.Equal(RfcSalt, Convert.ToBase64String(salt));

        var authMessage = Encoding.ASCII.GetBytes($"{ClientFirstBare},{ServerFirst},{ClientFinalWithoutProof}");
        // The server side of SCRAM, using only what the verifier stores: the proof recovers a
        // ClientKey whose hash must be StoredKey, and ServerKey signs the exchange.
        var clientSignature = HMACSHA256.HashData(storedKey, authMessage);
        var clientKey = Convert.FromBase64String(RfcClientProof).Zip(clientSignature, (a, b) => (byte)(a ^ b)).ToArray();
        Assert.Equal(storedKey, SHA256.HashData(clientKey));
        Assert.Equal(RfcServerSignature, Convert.ToBase64String(HMACSHA256.HashData(serverKey, authMessage)));

        Assert.Equal(
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
            verifier);
    }

    [Fact]
    public void Create_UsesAFresh16ByteSaltAnd4096Iterations_AndNeverContainsThePassword()
    {
        const string password = "Correct-Horse_Battery9";
        var first = ScramVerifier.Create(password);
        var second = ScramVerifier.Create(password);

        Assert.NotEqual(first, second);
        foreach (var verifier in new[] { first, second })
        {
            var (iterations, salt, storedKey, serverKey) = Split(verifier);
            Assert.Equal(4096, iterations);
            Assert.Equal(16, salt.Length);
            Assert.Equal(32, storedKey.Length);
            Assert.Equal(32, serverKey.Length);
            Assert.DoesNotContain(password, verifier, StringComparison.Ordinal);
            Assert.DoesNotContain('\'', verifier);
            Assert.DoesNotContain('\\', verifier);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("pässword-with-umlaut")]
    [InlineData("tab\tinside")]
    public void Create_RefusesWhatSaslPrepWouldChange(string password)
    {
        Assert.False(ScramVerifier.IsSupported(password));
        Assert.Throws<ArgumentException>(() => ScramVerifier.Create(password));
    }

    private static (int Iterations, byte[] Salt, byte[] StoredKey, byte[] ServerKey) Split(string verifier)
    {
        // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
        var parts = verifier.Split('$');
        Assert.Equal(3, parts.Length);
        Assert.Equal("SCRAM-SHA-256", parts[0]);
        var head = parts[1].Split(':');
        var keys = parts[2].Split(':');
        return (int.Parse(head[0], System.Globalization.CultureInfo.InvariantCulture), Convert.FromBase64String(head[1]), Convert.FromBase64String(keys[0]), Convert.FromBase64String(keys[1]));
    }
}
