using System.Reflection;
using System.Reflection.Emit;

namespace Vault.Tests.Infrastructure;

/// <summary>
/// Finds the methods of an assembly whose IL calls (or constructs with) a given method, for
/// architecture tests that hold a rule to one place: a rule the compiler cannot enforce, checked
/// over the built code instead of its text.
/// </summary>
public static class IlScan
{
    /// <summary>The type a nested one (a lambda's closure, an async method's state machine) belongs to.</summary>
    public static Type Outermost(Type type)
    {
        while (type.DeclaringType is { } outer)
        {
            type = outer;
        }
        return type;
    }

    /// <summary>Every method and constructor in <paramref name="assembly"/> whose IL calls <paramref name="target"/>.</summary>
    public static IEnumerable<MethodBase> Callers(Assembly assembly, MethodBase target)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var type in assembly.GetTypes())
        {
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                if (method.GetMethodBody()?.GetILAsByteArray() is { } il && Calls(method, il, target))
                {
                    yield return method;
                }
            }
        }
    }

    private static bool Calls(MethodBase method, byte[] il, MethodBase target)
    {
        var offset = 0;
        while (offset < il.Length)
        {
            OpCode code;
            if (il[offset] == 0xFE)
            {
                code = TwoByte[il[offset + 1]];
                offset += 2;
            }
            else
            {
                code = OneByte[il[offset]];
                offset += 1;
            }
            if ((code == OpCodes.Call || code == OpCodes.Callvirt || code == OpCodes.Newobj || code == OpCodes.Ldftn || code == OpCodes.Ldvirtftn)
                && method.Module.ResolveMethod(BitConverter.ToInt32(il, offset), GenericArguments(method.DeclaringType), GenericArguments(method)) == target)
            {
                return true;
            }
            offset += OperandSize(code, il, offset);
        }
        return false;
    }

    private static Type[]? GenericArguments(Type? type) => type is { IsGenericType: true } ? type.GetGenericArguments() : null;

    private static Type[]? GenericArguments(MethodBase method) => method is MethodInfo { IsGenericMethod: true } ? method.GetGenericArguments() : null;

    private static int OperandSize(OpCode code, byte[] il, int offset) => code.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, offset),
        _ => 4,
    };

    private static readonly OpCode[] OneByte = new OpCode[256];
    private static readonly OpCode[] TwoByte = new OpCode[256];

    static IlScan()
    {
        foreach (var field in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var code = (OpCode)field.GetValue(null)!;
            var value = (ushort)code.Value;
            if (code.Size == 1)
            {
                OneByte[value] = code;
            }
            else
            {
                TwoByte[value & 0xFF] = code;
            }
        }
    }
}
