using System.Net;

namespace Vault.Server.Hosting;

/// <summary>A parsed HOST:PORT listen address.</summary>
public sealed record ListenAddress(IPAddress Address, int Port)
{
    public bool IsLoopback => IPAddress.IsLoopback(Address);

    /// <exception cref="ValidationException">Not an IP address (or localhost) and a port.</exception>
    public static ListenAddress Parse(string value)
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), out var port) || port is < 0 or > 65535)
        {
            throw new ValidationException("listen", $"'{value}' is not HOST:PORT");
        }
        var host = value[..colon].Trim('[', ']');
        if (host == "localhost")
        {
            return new ListenAddress(IPAddress.Loopback, port);
        }
        if (!IPAddress.TryParse(host, out var address))
        {
            throw new ValidationException("listen", $"'{host}' is not an IP address");
        }
        return new ListenAddress(address, port);
    }
}
