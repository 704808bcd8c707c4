using System.Security.Cryptography.X509Certificates;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Identity;

/// <summary>How people log in against a directory (one record, in the system collection), sealed: editing the data file must not point logins at another directory or map a group to more.</summary>
public sealed class LdapConfigRecord
{
    public const string Id = "auth-ldap-config";

    public string Url { get; set; } = "";
    public bool StartTls { get; set; }
    public string CaCertificatePem { get; set; } = "";
    public string UserDnTemplate { get; set; } = "";
    public string GroupBaseDn { get; set; } = "";
    public string GroupAttribute { get; set; } = "cn";
    public Dictionary<string, string> GroupMap { get; set; } = new(StringComparer.Ordinal);
    public long TokenTtlSeconds { get; set; }
    public long TokenMaxTtlSeconds { get; set; }
    public bool RequireMfa { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{Url}\n{StartTls}\n{CaCertificatePem.Length}:{CaCertificatePem}\n{UserDnTemplate}\n{GroupBaseDn}\n{GroupAttribute}\n"
        + string.Join(';', GroupMap.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key.Length}:{p.Key}={p.Value}"))
        + $"\n{TokenTtlSeconds}\n{TokenMaxTtlSeconds}\n{RequireMfa}";
}

/// <summary>What an admin configures.</summary>
public sealed record LdapSpec(string Url, bool StartTls, string CaCertificatePem, string UserDnTemplate, string GroupBaseDn, string GroupAttribute,
    IReadOnlyDictionary<string, string> GroupMap, TimeSpan? TokenTtl, TimeSpan? TokenMaxTtl, bool RequireMfa = false);

/// <summary>
/// Directory login (<see cref="LdapDirectory"/>): a person's directory password is checked by a
/// bind as them over verified TLS; their directory groups map to vault groups, which the token
/// holds (<see cref="TokenRecord.ExternalGroups"/>) on top of the entity named like the user —
/// the same entity a userpass user of that name is — with its second factor when enrolled.
/// </summary>
public sealed class LdapLogin(IVaultStore store, SecurityBarrier barrier, Identities identities, MfaManager mfa, Usage.UsageTracker usage, TimeProvider clock)
{
    public const string Placeholder = "{{username}}";
    private const string LoginRefused = "login refused: invalid username or password";
    private static readonly TimeSpan BindTimeout = TimeSpan.FromSeconds(10);

    public Task<LdapConfigRecord> SetConfigAsync(LdapSpec spec, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(spec.Url, UriKind.Absolute, out var url) || url.Scheme is not ("ldap" or "ldaps") || url.AbsolutePath.Length > 1)
        {
            throw new ValidationException("config.url", "must be ldap://host[:port] or ldaps://host[:port]");
        }
        if (url.Scheme == "ldap" && !spec.StartTls)
        {
            throw new ValidationException("config.start_tls", "must be set for an ldap:// url: passwords are never sent in the clear (or use ldaps://)");
        }
        try
        {
            using var ca = X509Certificate2.CreateFromPem(spec.CaCertificatePem);
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new ValidationException("config.ca_certificate_pem", "must be the PEM of the CA certificate that signed the directory's");
        }
        if (!spec.UserDnTemplate.Contains(Placeholder, StringComparison.Ordinal) || spec.UserDnTemplate.Length > 1024)
        {
            throw new ValidationException("config.user_dn_template", $"must contain {Placeholder}, e.g. uid={Placeholder},ou=people,dc=example,dc=com");
        }
        if (spec.GroupBaseDn.Length is 0 or > 1024)
        {
            throw new ValidationException("config.group_base_dn", "must name where groups are, e.g. ou=groups,dc=example,dc=com");
        }
        var attribute = spec.GroupAttribute.Length == 0 ? "cn" : spec.GroupAttribute;
        if (!attribute.All(char.IsAsciiLetterOrDigit))
        {
            throw new ValidationException("config.group_attribute", "must be an attribute name, e.g. cn");
        }
        foreach (var (directoryGroup, vaultGroup) in spec.GroupMap)
        {
            PolicyStore.ValidateName(vaultGroup, $"config.group_map[{directoryGroup}]");
            if (!identities.GroupExists(vaultGroup))
            {
                throw new ValidationException($"config.group_map[{directoryGroup}]", $"no group named '{vaultGroup}'");
            }
        }
        var ttl = TokenManager.LoginTtl(spec.TokenTtl, TokenManager.DefaultTtl, "config.token_ttl");
        var maxTtl = TokenManager.LoginTtl(spec.TokenMaxTtl, ttl > TokenManager.DefaultMaxTtl ? ttl : TokenManager.DefaultMaxTtl, "config.token_max_ttl");
        var record = new LdapConfigRecord
        {
            Url = url.GetLeftPart(UriPartial.Authority),
            StartTls = url.Scheme == "ldap",
            CaCertificatePem = spec.CaCertificatePem,
            UserDnTemplate = spec.UserDnTemplate,
            GroupBaseDn = spec.GroupBaseDn,
            GroupAttribute = attribute,
            GroupMap = new Dictionary<string, string>(spec.GroupMap, StringComparer.Ordinal),
            TokenTtlSeconds = (long)ttl.TotalSeconds,
            TokenMaxTtlSeconds = (long)maxTtl.TotalSeconds,
            RequireMfa = spec.RequireMfa,
        };
        record.Seal = RecordSeal.Compute(Hmac, Collections.System, LdapConfigRecord.Id, record.Canonical());
        return store.WriteAsync(tx =>
        {
            tx.Put(Collections.System, LdapConfigRecord.Id, record);
            return record;
        }, cancellationToken);
    }

    public LdapConfigRecord GetConfig() => LoadConfig() ?? throw new NotFoundException("ldap login is not configured");

    /// <summary>Username + directory password (+ code) → a token for the entity named like the user.</summary>
    /// <exception cref="UnauthenticatedException">The directory refused the password, or the entity is disabled.</exception>
    /// <exception cref="UnavailableException">The directory cannot be reached over verified TLS.</exception>
    public async Task<(string Token, TokenRecord Record)> LoginAsync(string username, string password, string? mfaCode, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(username, "username");
        if (string.IsNullOrEmpty(password) || password.Length > 1024)
        {
            throw new ValidationException("password", "must be 1 to 1024 characters");
        }
        var config = LoadConfig() ?? throw new PreconditionException("ldap login is not configured (vaultctl ldap config)");
        var dn = config.UserDnTemplate.Replace(Placeholder, EscapeDnValue(username), StringComparison.Ordinal);
        // The entry names the entity only once the directory accepted the password: a username
        // as typed may be a password typed into the wrong field.
        var audit = Audit.AuditScope.Current;
        var directoryGroups = await Task.Run(() => LdapDirectory.BindAndReadGroups(
            new LdapEndpoint(config.Url, config.StartTls, config.CaCertificatePem), dn, password, config.GroupBaseDn, config.GroupAttribute, BindTimeout), cancellationToken)
            ?? throw new UnauthenticatedException(LoginRefused);
        var groups = directoryGroups.Where(config.GroupMap.ContainsKey).Select(g => config.GroupMap[g]).Distinct(StringComparer.Ordinal).ToList();
        var token = TokenManager.NewToken();
        var tokenHash = TokenManager.HashWith(Hmac, token);
        try
        {
            var login = await store.WriteAsync(tx =>
            {
                var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                var entity = identities.EnsureEntity(tx, username);
                if (entity.Disabled)
                {
                    throw new UnauthenticatedException($"login refused: entity '{username}' is disabled");
                }
                var mfaAt = mfa.AtLogin(tx, username, entity.EntityId, config.RequireMfa, mfaCode, now);
                var record = Identities.WritePersonToken(tx, Hmac, tokenHash, $"ldap-{username}", entity, username, [],
                    config.TokenTtlSeconds, config.TokenMaxTtlSeconds, now, mfaAt, groups, audit);
                return (token, record);
            }, cancellationToken);
            usage.Used(Usage.UsageKind.Person, login.Item2.EntityId);
            return login;
        }
        catch (MfaCodeRefusedException ex)
        {
            await mfa.CountFailureAsync(ex.Entity, cancellationToken);
            throw;
        }
    }

    /// <summary>RFC 4514 escaping of an attribute value in a DN.</summary>
    internal static string EscapeDnValue(string value) =>
        string.Concat(value.Select((c, i) => c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' or '=' || (i == 0 && c is '#' or ' ') || (i == value.Length - 1 && c == ' ')
            ? "\\" + c
            : c.ToString()));

    private LdapConfigRecord? LoadConfig() =>
        RecordSeal.Read<LdapConfigRecord>(store, Hmac, Collections.System, LdapConfigRecord.Id, r => r.Canonical(), r => r.Seal);

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
