using Vault.Server.Audit;

namespace Vault.Tests.Audit;

/// <summary>
/// What the audit log's kept handle is checked with: the path's file and the handle's file are
/// the same one, at the same length, until the file is appended to, cut or replaced. (Were the
/// check always "unknown", the log would silently reopen the file for every group.)
/// </summary>
public sealed class FileIdentityTests
{
    [Fact]
    public void APathAndItsOpenHandle_AreOneFile_UntilItGrowsOrIsReplaced()
    {
        var dir = Directory.CreateTempSubdirectory("vault-identity-").FullName;
        var path = Path.Combine(dir, "audit-0000000001.log");
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
        stream.Write("first\n"u8);
        var native = FileIdentity.NativePath(path);

        var byHandle = FileIdentity.Of(stream.SafeFileHandle);
        var byPath = FileIdentity.Of(native);
        Assert.NotNull(byHandle);
        Assert.Equal(byHandle, byPath);
        Assert.Equal(6, byPath!.Value.Length);

        File.AppendAllText(path, "by someone else\n");
        Assert.NotEqual(byHandle, FileIdentity.Of(native));

        File.Move(path, path + ".moved");
        Assert.Null(FileIdentity.Of(native));
        File.WriteAllText(path, "first\n");
        var replaced = FileIdentity.Of(native);
        Assert.NotNull(replaced);
        Assert.NotEqual(byHandle!.Value.Inode, replaced!.Value.Inode);
    }
}
