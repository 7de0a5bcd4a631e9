// Lets the worker identity call the ACS teamsExtension assignments API with Entra ID auth.
// Deployed into the ACS resource's own resource group.

@description('Name of the existing Azure Communication Services resource.')
param acsName string

@description('Principal id of the worker identity.')
param principalId string

@description('Role definition id (GUID) to grant on the ACS resource, e.g. Contributor or a custom role.')
param roleDefinitionId string

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: acsName
}

resource grant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acs.id, principalId, roleDefinitionId)
  scope: acs
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
  }
}
