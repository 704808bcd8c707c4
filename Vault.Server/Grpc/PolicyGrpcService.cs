using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Auth;

namespace Vault.Server.Grpc;

/// <summary>Policies over gRPC.</summary>
public sealed class PolicyGrpcService(PolicyStore policies) : PolicyService.PolicyServiceBase
{
    public override async Task<PutPolicyResponse> Put(PutPolicyRequest request, ServerCallContext context)
    {
        var policy = request.Policy ?? throw new ValidationException("policy", "is required");
        var rules = policy.Rules.Select(r => new PolicyRuleRecord { Path = r.Path, Capabilities = [.. r.Capabilities], MfaWithinSeconds = r.MfaWithinSeconds }).ToList();
        await policies.PutAsync(policy.Name, rules, context.CancellationToken);
        return new PutPolicyResponse();
    }

    public override Task<Policy> Get(GetPolicyRequest request, ServerCallContext context)
    {
        var record = policies.Get(request.Name);
        var policy = new Policy { Name = request.Name };
        foreach (var rule in record.Rules)
        {
            var proto = new PolicyRule { Path = rule.Path, MfaWithinSeconds = rule.MfaWithinSeconds };
            proto.Capabilities.AddRange(rule.Capabilities);
            policy.Rules.Add(proto);
        }
        return Task.FromResult(policy);
    }

    public override Task<ListPoliciesResponse> List(ListPoliciesRequest request, ServerCallContext context)
    {
        var response = new ListPoliciesResponse();
        response.Names.AddRange(policies.List());
        return Task.FromResult(response);
    }

    public override async Task<DeletePolicyResponse> Delete(DeletePolicyRequest request, ServerCallContext context)
    {
        await policies.DeleteAsync(request.Name, context.CancellationToken);
        return new DeletePolicyResponse();
    }
}
