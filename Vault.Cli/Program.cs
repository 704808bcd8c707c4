Console.WriteLine("vaultctl");
