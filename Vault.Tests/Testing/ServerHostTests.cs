
namespace Vault.Tests.Testing;

public sealed class ServerHostTests
{
    [Fact]
    public void RequireBinaries_WhenOneIsMissing_ThrowsWithTheInstallCommand()
    {
        var ex = Assert.Throws<InvalidOperationException>(
            () => ServerHost.RequireBinaries("PostgreSQL 15", "apt-get install -y postgresql-15", "/bin/sh", "/nonexistent/postgres"));

        Assert.Contains("apt-get install -y postgresql-15", ex.Message, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/postgres", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UniqueName_RejectsAPrefixThatNeedsQuoting()
    {
        Assert.Throws<ArgumentException>(() => ServerHost.UniqueName("svc'; DROP"));
        Assert.Matches("^app_[0-9a-f]{32}$", ServerHost.UniqueName("app"));
    }
}
