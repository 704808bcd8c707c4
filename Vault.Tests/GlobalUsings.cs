global using Vault.Testing;
global using Vault.Testing.Servers;
global using Xunit;
