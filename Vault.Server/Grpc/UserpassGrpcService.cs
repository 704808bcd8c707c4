using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Identity;

namespace Vault.Server.Grpc;

/// <summary>Human login with a username and password over gRPC.</summary>
public sealed class UserpassGrpcService(UserpassManager users) : UserpassService.UserpassServiceBase
{
    public override async Task<User> PutUser(PutUserRequest request, ServerCallContext context)
    {
        var user = request.User ?? throw new ValidationException("user", "is required");
        var record = await users.PutUserAsync(new UserSpec(user.Name, user.Entity, user.Policies,
            user.TokenTtl.AsTimeSpan("user.token_ttl"), user.TokenMaxTtl.AsTimeSpan("user.token_max_ttl")), request.Password, context.CancellationToken);
        return ToProto(user.Name, record);
    }

    public override Task<User> GetUser(GetUserRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, users.GetUser(request.Name)));

    public override Task<ListUsersResponse> ListUsers(ListUsersRequest request, ServerCallContext context) =>
        Task.FromResult(new ListUsersResponse { Names = { users.ListUsers() } });

    public override async Task<DeleteUserResponse> DeleteUser(DeleteUserRequest request, ServerCallContext context)
    {
        await users.DeleteUserAsync(request.Name, context.CancellationToken);
        return new DeleteUserResponse();
    }

    public override async Task<User> UnlockUser(UnlockUserRequest request, ServerCallContext context) =>
        ToProto(request.Name, await users.UnlockAsync(request.Name, context.CancellationToken));

    public override async Task<UserpassLoginResponse> Login(UserpassLoginRequest request, ServerCallContext context)
    {
        var (token, record) = await users.LoginAsync(request.Username, request.Password, request.MfaCode, context.CancellationToken);
        return new UserpassLoginResponse { Token = token, Info = record.ToProto() };
    }

    public override async Task<ChangePasswordResponse> ChangePassword(ChangePasswordRequest request, ServerCallContext context)
    {
        await users.ChangePasswordAsync(request.Username, request.CurrentPassword, request.NewPassword, context.CancellationToken);
        return new ChangePasswordResponse();
    }

    public override async Task<UserpassConfig> SetConfig(SetUserpassConfigRequest request, ServerCallContext context)
    {
        var config = request.Config ?? throw new ValidationException("config", "is required");
        var record = await users.SetConfigAsync(config.RequireMfa, context.CancellationToken);
        return new UserpassConfig { RequireMfa = record.RequireMfa };
    }

    public override Task<UserpassConfig> GetConfig(GetUserpassConfigRequest request, ServerCallContext context) =>
        Task.FromResult(new UserpassConfig { RequireMfa = users.GetConfig().RequireMfa });

    private static User ToProto(string name, UserpassUserRecord record)
    {
        var user = new User
        {
            Name = name,
            Entity = record.Entity,
            Policies = { record.Policies },
            TokenTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.TokenTtlSeconds)),
            TokenMaxTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.TokenMaxTtlSeconds)),
            FailedLogins = (uint)record.FailedLogins,
            Lockouts = (uint)record.Lockouts,
            PasswordChangedAt = ProtoMapping.Time(record.PasswordChangedAtUnixMs),
        };
        if (record.LockedUntilUnixMs is { } until)
        {
            user.LockedUntil = ProtoMapping.Time(until);
        }
        return user;
    }
}
