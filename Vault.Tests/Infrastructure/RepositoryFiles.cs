namespace Vault.Tests.Infrastructure;

/// <summary>Files of the repository the tests read as a user would (the README, deploy/).</summary>
internal static class RepositoryFiles
{
    /// <summary>The checkout's root: the first folder above the test binaries that holds <c>Vault.sln</c>.</summary>
    public static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Vault.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException("Vault.sln not found above the test binaries");
    }
}
