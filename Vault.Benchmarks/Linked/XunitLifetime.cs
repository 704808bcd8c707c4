namespace Xunit;

/// <summary>
/// The one xunit type the linked <c>PostgresServer</c> fixture names (it is also a test
/// collection fixture), so that the benchmark can compile the fixture without the test framework.
/// Same shape as xunit 2's <c>IAsyncLifetime</c>; nothing here calls it.
/// </summary>
internal interface IAsyncLifetime
{
    Task InitializeAsync();

    Task DisposeAsync();
}
