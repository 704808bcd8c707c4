using Vault.Cli;

return await CliApp.RunAsync(args);
