namespace Vault.Client; /// <summary>x</summary> public static class Placeholder { }
