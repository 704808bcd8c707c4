namespace Vault.Server.Auth;

/// <summary>Who is calling: the resolved token and its compiled policies.</summary>
public sealed record CallerContext(TokenRecord Token, Acl Acl)
{
    public string Accessor => Token.Accessor;
}
