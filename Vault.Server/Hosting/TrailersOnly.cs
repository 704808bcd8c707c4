using Microsoft.AspNetCore.Http;

namespace Vault.Server.Hosting;

/// <summary>
/// A gRPC answer made before any service runs (by a middleware): the status in the headers, no
/// message — what gRPC calls a trailers-only response.
/// </summary>
internal static class TrailersOnly
{
    public static void Write(HttpResponse response, global::Grpc.Core.StatusCode status, string message)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Percent-encoded, as gRPC carries grpc-message.
        response.Headers["grpc-message"] = Uri.EscapeDataString(message);
    }
}
