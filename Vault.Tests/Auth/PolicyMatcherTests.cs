using Vault.Server;
using Vault.Server.Auth;

namespace Vault.Tests.Auth;

/// <summary>
/// The policy matcher on its own, without a server: which paths a rule's pattern covers
/// (<see cref="PathGlob"/>), which patterns are refused, and how a token's rules combine
/// (<see cref="Acl"/>: default deny, union of grants, deny wins).
/// </summary>
public sealed class PolicyMatcherTests
{
    [Theory]
    // Literal patterns match exactly that path.
    [InlineData("kv/app/db", "kv/app/db", true)]
    [InlineData("kv/app/db", "kv/app/db2", false)]
    [InlineData("kv/app/db", "kv/app", false)]
    [InlineData("kv/app/db", "kv/app/db/x", false)]
    // Names compare as exact byte strings: case, Unicode normalisation and lookalikes differ.
    [InlineData("kv/ABC/x", "kv/abc/x", false)]
    [InlineData("kv/caf\u00e9", "kv/cafe\u0301", false)]
    [InlineData("kv/caf\u00e9", "kv/caf\u00e9", true)]
    [InlineData("kv/admin", "kv/\u0430dmin", false)]
    // '+' is exactly one non-empty segment.
    [InlineData("kv/+/db", "kv/app/db", true)]
    [InlineData("kv/+/db", "kv//db", false)]
    [InlineData("kv/+/db", "kv/a/b/db", false)]
    [InlineData("kv/+/db", "kv/db", false)]
    // A trailing '*' is any suffix of the last segment and everything below it, but not the parent.
    [InlineData("kv/app/*", "kv/app/", true)]
    [InlineData("kv/app/*", "kv/app/db", true)]
    [InlineData("kv/app/*", "kv/app/db/deep/er", true)]
    [InlineData("kv/app/*", "kv/app", false)]
    [InlineData("kv/app/*", "kv/apple", false)]
    [InlineData("kv/app*", "kv/apple", true)]
    [InlineData("kv/app*", "kv/app/db", true)]
    [InlineData("kv/app*", "kv/ap", false)]
    [InlineData("kv/app*", "kv", false)]
    [InlineData("kv/+/db*", "kv/x/db-2/y", true)]
    [InlineData("kv/+/db*", "kv/x/other", false)]
    [InlineData("*", "anything/at/all", true)]
    // Characters that are wildcards elsewhere are literal here.
    [InlineData("kv/a_b", "kv/axb", false)]
    [InlineData("kv/a%", "kv/abc", false)]
    [InlineData("kv/a.b", "kv/aXb", false)]
    public void APattern_MatchesExactlyThePathsItNames(string pattern, string path, bool matches)
    {
        Assert.Equal(matches, PathGlob.Parse(pattern, "path").Matches(path));
    }

    [Theory]
    [InlineData("", "must not be empty")]
    [InlineData("   ", "must not be empty")]
    [InlineData("kv/*/db", "'*' is allowed only at the end")]
    [InlineData("kv/**", "'*' is allowed only at the end")]
    [InlineData("kv//db", "empty segment")]
    [InlineData("/kv/db", "empty segment")]
    [InlineData("kv/a+/db", "'+' must be a whole segment")]
    [InlineData("kv/+x*", "'+' must be a whole segment")]
    [InlineData("kv/\n/db", "printable")]
    public void ABadPattern_IsRefused_NamingTheFieldAndWhy(string pattern, string why)
    {
        var ex = Assert.Throws<ValidationException>(() => PathGlob.Parse(pattern, "rules[0].path"));

        Assert.Equal("rules[0].path", ex.Field);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APatternLongerThan512Characters_IsRefused()
    {
        Assert.Throws<ValidationException>(() => PathGlob.Parse("kv/" + new string('a', 510), "path"));
        Assert.Equal("kv/" + new string('a', 509), PathGlob.Parse("kv/" + new string('a', 509), "path").Pattern);
    }

    private static Acl Rules(params (string Pattern, Capability Capabilities)[] rules) =>
        new([.. rules.Select(r => new AclRule(PathGlob.Parse(r.Pattern, "path"), r.Capabilities))], isRoot: false);

    [Fact]
    public void NoRule_GrantsNothing()
    {
        var acl = Rules(("kv/app/*", Capability.Read));

        Assert.Equal(Capability.None, acl.CapabilitiesFor("kv/other/db"));
        Assert.False(acl.Allows("kv/other/db", Capability.Admin));
    }

    [Fact]
    public void MatchingRules_GrantTheUnionOfTheirCapabilities()
    {
        var acl = Rules(("kv/app/*", Capability.Read), ("kv/+/db", Capability.Update | Capability.List), ("kv/other", Capability.Delete));

        Assert.Equal(Capability.Read | Capability.Update | Capability.List, acl.CapabilitiesFor("kv/app/db"));
        Assert.Equal(Capability.Read, acl.CapabilitiesFor("kv/app/x"));
        Assert.True(acl.Allows("kv/app/db", Capability.Update | Capability.Delete));
        Assert.False(acl.Allows("kv/app/db", Capability.Delete | Capability.Rotate));
    }

    [Fact]
    public void ADenyRule_WinsOverEveryGrant_WhateverItsOrder()
    {
        var denyFirst = Rules(("kv/app/secret", Capability.Deny), ("kv/app/*", Capability.Admin));
        var denyLast = Rules(("kv/app/*", Capability.Admin), ("kv/+/secret", Capability.Deny | Capability.Read));

        foreach (var acl in new[] { denyFirst, denyLast })
        {
            Assert.Equal(Capability.None, acl.CapabilitiesFor("kv/app/secret"));
            Assert.Equal(Capability.Admin, acl.CapabilitiesFor("kv/app/open"));
        }
    }

    [Fact]
    public void TheRootPolicy_GrantsEverythingEverywhere_ButNotDenyItself()
    {
        var root = new Acl([], isRoot: true);

        Assert.Equal(Capability.Admin, root.CapabilitiesFor("anything/at/all"));
        Assert.Equal(Capability.None, root.CapabilitiesFor("kv/x") & Capability.Deny);
    }
}
