using System.Net;
using System.Net.Sockets;

namespace Vault.Server.Hosting;

/// <summary>A parsed HOST:PORT listen address.</summary>
public sealed record ListenAddress(IPAddress Address, int Port)
{
    public bool IsLoopback => IPAddress.IsLoopback(Address);

    /// <exception cref="ValidationException">Not an IP address (or localhost) and a port.</exception>
    /// <param name="field">The setting the address came from, for the error (<c>listen</c>, <c>metrics-listen</c>).</param>
    public static ListenAddress Parse(string value, string field = "listen")
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), out var port) || port is < 0 or > 65535)
        {
            throw new ValidationException(field, $"'{value}' is not HOST:PORT");
        }
        var host = value[..colon].Trim('[', ']');
        if (host == "localhost")
        {
            return new ListenAddress(IPAddress.Loopback, port);
        }
        if (!IPAddress.TryParse(host, out var address))
        {
            throw new ValidationException(field, $"'{host}' is not an IP address");
        }
        return new ListenAddress(address, port);
    }

    /// <summary>Binds the address for a moment, as Kestrel will, to find out whether it is taken.</summary>
    /// <param name="display">The address as configured, for the message.</param>
    /// <exception cref="ValidationException">Another process listens there, or it is not an address of this host.</exception>
    /// <param name="field">The setting the address came from, for the error.</param>
    public void EnsureFree(string display, string field = "listen")
    {
        using var probe = new Socket(Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (Address.Equals(IPAddress.IPv6Any))
        {
            probe.DualMode = true;
        }
        try
        {
            probe.Bind(new IPEndPoint(Address, Port));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new ValidationException(field, $"address {display} is already in use");
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.AccessDenied)
        {
            throw new ValidationException(field, $"cannot listen on {display}: {ex.Message}");
        }
    }
}
