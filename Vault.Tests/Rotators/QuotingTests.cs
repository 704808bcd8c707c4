using Vault.Rotators.MySql;
using Vault.Rotators.Postgres;

namespace Vault.Tests.Rotators;

public sealed class QuotingTests
{
    [Theory]
    [InlineData("svc", "\"svc\"")]
    [InlineData("Svc App", "\"Svc App\"")]
    [InlineData("we\"ird", "\"we\"\"ird\"")]
    [InlineData("o'brien\\x", "\"o'brien\\x\"")]
    public void Postgres_QuoteIdentifier_DoublesDoubleQuotes(string name, string expected) =>
        Assert.Equal(expected, PostgresSql.QuoteIdentifier(name));

    [Theory]
    [InlineData("plain", "'plain'")]
    [InlineData("it's", "'it''s'")]
    [InlineData("back\\slash'", "E'back\\\\slash'''")]
    public void Postgres_QuoteLiteral_MeansTheSameUnderEitherStandardConformingStrings(string value, string expected) =>
        Assert.Equal(expected, PostgresSql.QuoteLiteral(value));

    [Fact]
    public void Postgres_RoleNames_LongerThan63Bytes_AreRefused()
    {
        Assert.Null(PostgresSql.RoleNameProblem(new string('r', 63)));
        Assert.NotNull(PostgresSql.RoleNameProblem(new string('r', 64)));
        // 32 two-byte characters: 64 bytes.
        Assert.NotNull(PostgresSql.RoleNameProblem(new string('é', 32)));
        Assert.NotNull(PostgresSql.RoleNameProblem(""));
        Assert.NotNull(PostgresSql.RoleNameProblem("nul\0inside"));
    }

    [Theory]
    [InlineData(false, @"o'b\x", @"'o''b\\x'")]
    [InlineData(true, @"o'b\x", @"'o''b\x'")]
    [InlineData(false, "dq\"", "'dq\"'")]
    public void MySql_Literal_FollowsNoBackslashEscapes(bool noBackslashEscapes, string value, string expected) =>
        Assert.Equal(expected, new MySqlQuoting(noBackslashEscapes).Literal(value));

    [Theory]
    [InlineData("", false)]
    [InlineData("STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO", false)]
    [InlineData("ANSI_QUOTES,NO_BACKSLASH_ESCAPES", true)]
    [InlineData("no_backslash_escapes", true)]
    public void MySql_SqlMode_DecidesBackslashEscaping(string sqlMode, bool expected) =>
        Assert.Equal(expected, MySqlQuoting.ForSqlMode(sqlMode).NoBackslashEscapes);

    [Theory]
    [InlineData("app", "%", "app", "%")]
    [InlineData("app", "10.0.0.%", "app", "10.0.0.%")]
    [InlineData("app@localhost", "%", "app", "localhost")]
    [InlineData("a@b@%", "localhost", "a@b", "%")]
    [InlineData("o'b\\x@%", "%", "o'b\\x", "%")]
    public void MySql_Account_SplitsAtTheLastAt(string account, string defaultHost, string user, string host)
    {
        var (parsed, problem) = MySqlAccount.Parse(account, defaultHost);
        Assert.Null(problem);
        Assert.Equal(new MySqlAccount(user, host), parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("@%")]
    [InlineData("app@")]
    [InlineData("new\nline")]
    public void MySql_Account_RefusesEmptyPartsAndControlCharacters(string account) =>
        Assert.NotNull(MySqlAccount.Parse(account, "%").Problem);

    [Fact]
    public void MySql_Account_QuotesBothParts() =>
        Assert.Equal(@"'o''b\\x'@'%'", new MySqlAccount(@"o'b\x", "%").Quote(new MySqlQuoting(false)));

    [Theory]
    // What MariaDB's PASSWORD() returns.
    [InlineData("password", "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19")]
    [InlineData("HashedPw123", "*B8C413FE472630C01A13BD5F13C32E41B851356C")]
    public void MySql_NativePasswordHash_MatchesThePasswordFunction(string password, string expected) =>
        Assert.Equal(expected, NativePasswordHash.Compute(password));
}
